"""Training a parser: its own loss, selection by development F1.

Every epoch trains on shuffled, length-bucketed batches (the parser's `loss`: the
cross-entropy of each next target token of a sequence-to-sequence parser, the tree-CRF or
structured hinge loss of a chart parser), then parses the development trees with the
parser's quickest decoder (greedy; CKY) and scores them with EVALB; the weights of the epoch
with the best development F1 are kept. Every epoch ends with an atomic checkpoint
from which an interrupted run resumes exactly, with the same settings (more epochs allowed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..batching import bucketed_batches
from ..files import save_atomic
from ..saved import load_checkpoint, stamp
from .data import inputs_of
from .evalb import evalb
from .parser import BaseParser, Parse
from .tree import Tree

__all__ = ["ParserHistory", "ParserTrainConfig", "dev_scores", "fit", "gold_tagged", "inputs_of"]


@dataclass(frozen=True)
class ParserTrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: Passes over the training trees.
        batch_size: Trees per update.
        lr: Adam learning rate.
        clip: Gradient norm clipping.
        label_smoothing: Of the token cross-entropy (sequence-to-sequence parsers only).
        seed: Shuffling and initialisation seed.
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 5.0
    label_smoothing: float = 0.0
    seed: int = 0


@dataclass
class ParserHistory:
    """Per epoch: training loss, development loss and F1 (quickest decoder), seconds; and
    ``changes``: one ``{"after_epoch": n, "changed": {setting: [before, after]}}`` per resume
    with changed settings (more epochs)."""

    loss: list[float] = field(default_factory=list)
    dev_loss: list[float] = field(default_factory=list)
    dev_f1: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)


def gold_tagged(parses: Sequence[Parse], tags: Sequence[Sequence[str]]) -> list[Tree]:
    """The parsed trees with the gold POS tags on their preterminals, for EVALB: it deletes
    punctuation by each tree's own tags, and a parser's ``XX`` would keep it."""
    return [parse.tree.with_tags(gold) for parse, gold in zip(parses, tags, strict=True)]


@torch.no_grad()
def dev_scores(
    parser: BaseParser, trees: Sequence[Tree], batch_size: int = 64
) -> tuple[float, float]:
    """Development loss and EVALB F1 (%) of the parses of the parser's quickest decoder."""
    parser.model.eval()
    losses = [
        float(parser.loss(trees[i : i + batch_size])) * len(trees[i : i + batch_size])
        for i in range(0, len(trees), batch_size)
    ]
    sentences, tags = inputs_of(trees)
    parses = parser.parse(sentences, tags if parser.uses_tags else None, mode=parser.modes[0])
    result = evalb(list(trees), gold_tagged(parses, tags))
    return sum(losses) / len(trees), 100 * result.f1


def fit(
    parser: BaseParser,
    train: Sequence[Tree],
    dev: Sequence[Tree],
    config: ParserTrainConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> ParserHistory:
    """Train ``parser.model`` on ``train`` and keep its best epoch by development F1.

    Args:
        parser: The parser to train (its model's device is the training device).
        train: Normalised training trees.
        dev: Normalised development trees.
        config: Optimisation settings.
        checkpoint: Where to keep the resumable state, or ``None``.
        progress: Show a progress bar over epochs.
        log: Where the resume message goes.

    Returns:
        The history of the run (epochs before a resume included).

    Raises:
        ValueError: naming ``checkpoint``, when it is not a parser checkpoint (truncated, or
            another file) or was made with other settings than the model's and ``config``
            (other than ``epochs``).
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = parser.model
    settings = {"model": asdict(model.config), "training": asdict(config)}
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history, best, best_state = ParserHistory(), -math.inf, None
    if checkpoint is not None and checkpoint.exists():
        state, changes = load_checkpoint(checkpoint, "parser checkpoint", settings, model)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng"):  # dropout on a GPU draws from its own generators
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        history = ParserHistory(**state["history"])
        best, best_state = state["best"], state["best_model"]
        if changes:
            history.changes.append({"after_epoch": len(history.loss), "changed": changes})
        log(f"resumed from {checkpoint} after epoch {len(history.loss)}")
    lengths = [len(tree.leaves()) for tree in train]
    bar = tqdm(total=config.epochs, initial=len(history.loss), disable=not progress, leave=False)
    while len(history.loss) < config.epochs:
        begin, total, count = time.perf_counter(), 0.0, 0
        model.train()
        for indices in bucketed_batches(lengths, config.batch_size, generator):
            loss = parser.loss([train[i] for i in indices], config.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            total, count = total + float(loss.detach()) * len(indices), count + len(indices)
        dev_loss, dev_f1 = dev_scores(parser, dev)
        history.loss.append(total / count)
        history.dev_loss.append(dev_loss)
        history.dev_f1.append(dev_f1)
        history.seconds.append(time.perf_counter() - begin)
        if dev_f1 > best:
            best = dev_f1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.update()
        bar.set_postfix(loss=f"{total / count:.3f}", dev_f1=f"{dev_f1:.1f}")
        if checkpoint is not None:
            save_atomic(
                {
                    **stamp("parser checkpoint"),
                    "settings": settings,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "history": asdict(history),
                    "best": best,
                    "best_model": best_state,
                },
                checkpoint,
            )
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
