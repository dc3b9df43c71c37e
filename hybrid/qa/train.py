"""Training and evaluation of a `Reader`: its task for the training engine
(`hybrid.training`), with linear start and the paper's schedule, and its scores; a trained
reader saves itself (`Reader.save`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..nn.memory import answer_loss
from ..training import History, Task, TrainConfig
from ..training import train as run_training
from .batching import QABatch, batch_indices, batches
from .model import Reader

__all__ = ["QATrainConfig", "ReadingTask", "evaluate", "fit"]


@dataclass(frozen=True)
class QATrainConfig(TrainConfig):
    """Optimisation settings of a reader (`hybrid.training.TrainConfig`).

    The defaults are the memory-network paper's: SGD on the loss summed over a batch of 32,
    the learning rate halved every 25 epochs for 100 epochs, gradient norm clipped at 40;
    with ``linear_start`` a memory network first trains ``linear_start_epochs`` epochs
    without the attention softmax at ``linear_start_lr``, then the main schedule starts at
    ``lr`` (0.005, as the paper's code does after a linear start; it uses 0.01 without one).
    ``epochs`` and ``anneal_every`` count the epochs of the main schedule only.

    Attributes:
        reduction: The batch loss: ``"sum"`` over its questions (the paper's, which sets the
            scale of ``lr`` and ``clip``) or ``"mean"``.
        linear_start: Linear start for a memory network (ignored by the other readers).
        linear_start_lr: Learning rate during linear start.
        linear_start_epochs: Epochs of linear start.
    """

    epochs: int = 100
    optimizer: str = "sgd"
    lr: float = 0.005
    anneal_every: int = 25
    clip: float = 40.0
    reduction: str = "sum"
    linear_start: bool = True
    linear_start_lr: float = 0.005
    linear_start_epochs: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {self.reduction!r}")
        value = self.linear_start_epochs
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"linear_start_epochs must be a positive integer, got {value!r}")
        if not self.linear_start_lr > 0:
            raise ValueError(f"linear_start_lr must be positive, got {self.linear_start_lr!r}")


@torch.no_grad()
def evaluate(reader: Reader, data: QABatch, batch_size: int = 256) -> dict:
    """Error rate, mean loss, predictions and supporting-fact accuracy on ``data``.

    Returns:
        ``{"error", "loss", "predicted", "support"}``: error in ``[0, 1]`` (an answer unseen
        in training counts as an error), ``predicted`` answer indices (a list), and
        ``support``, one value per hop: the share of questions whose highest-attention
        statement at that hop is a gold supporting fact (``None`` without attention; only
        questions with a remembered supporting fact count).
    """
    reader.eval()
    device = next(reader.parameters()).device
    wrong, loss, known, predicted = 0, 0.0, 0, []
    hits, counted = None, 0
    for batch in batches(data, batch_size):
        batch = batch.to(device)
        logits, attention = reader(batch)
        guess = logits.argmax(-1)
        predicted.extend(guess.tolist())
        wrong += int((guess != batch.answers).sum())
        labelled = batch.answers >= 0
        if bool(labelled.any()):
            loss += float(answer_loss(logits, batch.answers, "sum"))
            known += int(labelled.sum())
        if attention is not None:
            top = attention.argmax(-1)  # (B, hops)
            gold = batch.supporting[:, None, :] == top[..., None]  # (B, hops, S)
            has = (batch.supporting >= 0).any(-1)
            step = (gold.any(-1) & has[:, None]).sum(0).double()
            hits = step if hits is None else hits + step
            counted += int(has.sum())
    support = None if hits is None else [float(h) / max(counted, 1) for h in hits]
    return {
        "error": wrong / len(data),
        "loss": loss / known if known else math.nan,
        "predicted": predicted,
        "support": support,
    }


def _set_linear_start(reader: nn.Module, linear: bool) -> None:
    """Switch the attention softmax of a memory-network ``reader`` off (``linear``) or on;
    the other readers have none."""
    if hasattr(reader.model, "linear_start"):
        reader.model.linear_start = linear


class ReadingTask(Task):
    """Training a `Reader` (`hybrid.training.Task`): shuffled batches of questions (bucketed
    by text length for the LSTM readers), the answer cross-entropy summed over a batch's
    questions, the lowest validation error (then loss) kept.

    With linear start (``config.linear_start`` and a memory network) the run has
    ``linear_start_epochs`` epochs without the attention softmax at ``linear_start_lr``
    first, never kept, then ``config.epochs`` epochs of the main schedule: ``lr`` times
    ``anneal_factor`` every ``anneal_every`` main epochs.

    Args:
        reader: The model.
        train: The collated training questions (`hybrid.qa.batching.collate`).
        valid: The collated validation questions.
        config: Optimisation settings.
    """

    kind = "reader checkpoint"

    def __init__(
        self, reader: Reader, train: QABatch, valid: QABatch, config: QATrainConfig
    ) -> None:
        self.model, self.config, self.train, self.valid = reader, config, train, valid
        self.reduction = config.reduction
        memory = reader.config.kind == "memory"
        self.linear_epochs = config.linear_start_epochs if config.linear_start and memory else 0
        self.bucket = not memory  # the LSTM readers pay for padded text
        self.linear = False  # whether the epoch under way is one of linear start

    def epochs(self) -> int:
        return self.linear_epochs + self.config.epochs

    def begin_epoch(self, epoch: int) -> dict[str, bool]:
        self.linear = epoch < self.linear_epochs
        _set_linear_start(self.model, self.linear)
        return {"linear": self.linear}

    def selects(self, epoch: int) -> bool:
        return epoch >= self.linear_epochs

    def learning_rate(self, epoch: int) -> float:
        if epoch < self.linear_epochs:
            return self.config.linear_start_lr
        return super().learning_rate(epoch - self.linear_epochs)

    def plan(self, generator: torch.Generator) -> list[list[int]]:
        return batch_indices(
            self.train,
            self.config.batch_size,
            shuffle=True,
            generator=generator,
            bucket=self.bucket,
        )

    def loss(self, batch: Sequence[int], generator: torch.Generator) -> tuple[Tensor, float]:
        """The answer cross-entropy summed over the questions ``batch``, and how many of them
        have an answer seen in training (all of them when the vocabulary was built from the
        training questions)."""
        device = next(self.model.parameters()).device
        questions = self.train.select(torch.tensor(batch, dtype=torch.long)).to(device)
        logits, _ = self.model(questions)
        return answer_loss(logits, questions.answers, "sum"), int((questions.answers >= 0).sum())

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """``valid_loss`` (mean per question) and ``valid_error`` (in ``[0, 1]``) of ``model``
        on the validation questions, with the attention softmax of the epoch under way."""
        _set_linear_start(model, self.linear)
        scores = evaluate(model, self.valid)
        return {"valid_loss": scores["loss"], "valid_error": scores["error"]}

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        return (-metrics["valid_error"], -metrics["valid_loss"])

    def describe(self) -> str:
        return f"{self.model.config.kind} reader"


def fit(
    reader: Reader,
    train: QABatch,
    valid: QABatch,
    config: QATrainConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    save_every: int = 0,
) -> History:
    """Train ``reader`` (`hybrid.training.train` over a `ReadingTask`) and keep the weights
    of its best validation epoch.

    The kept epoch is the one with the lowest validation error (then loss; the earliest of
    ties) among those after linear start. The reader leaves with its attention softmax on.

    Args:
        reader: The model (its device is the training device).
        train: The collated training questions (`hybrid.qa.batching.collate`).
        valid: The collated validation questions.
        config: Optimisation settings.
        checkpoint: Where to keep the resumable state, or ``None``.
        progress: Show a progress bar over each epoch's batches.
        log: Where one line per epoch and the resume message go.
        save_every: Also checkpoint every this many steps within an epoch (0: after each
            epoch only).

    Returns:
        The `hybrid.training.History` of the run (including epochs before a resume), linear
        start included: ``loss`` (per question), ``lr``, ``seconds``, ``valid_loss``,
        ``valid_error`` and ``linear`` (whether the epoch was one of linear start).

    Raises:
        ValueError: naming ``checkpoint``, when it is not a reader checkpoint (truncated, or
            another file) or was made with other settings than ``reader.config`` and
            ``config`` (other than ``epochs``).
    """
    task = ReadingTask(reader, train, valid, config)
    try:
        return run_training(task, checkpoint, progress=progress, log=log, save_every=save_every)
    finally:
        _set_linear_start(reader, False)
