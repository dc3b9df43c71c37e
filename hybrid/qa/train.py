"""Training and evaluation of a `Reader`: linear start, annealing, resumable checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..files import save_atomic
from ..nn.memory import answer_loss
from ..saved import load_checkpoint, load_saved, save_trained, stamp
from .batching import QABatch, QAVocabulary, batches
from .model import Reader, ReaderConfig

__all__ = ["QAHistory", "QATrainConfig", "evaluate", "fit", "load_reader", "save_reader"]


@dataclass
class QATrainConfig:
    """Optimisation settings (plain data: saved in checkpoints).

    The defaults are the memory-network paper's: SGD on the loss summed over a batch of 32,
    the learning rate halved every 25 epochs for 100 epochs, gradient norm clipped at 40;
    with ``linear_start`` a memory network first trains ``linear_start_epochs`` epochs
    without the attention softmax at ``linear_start_lr``, then the main schedule starts at
    ``lr`` (0.005, as the paper's code does after a linear start; it uses 0.01 without one).

    Attributes:
        epochs: Epochs of the main schedule (after linear start).
        batch_size: Questions per batch.
        optimizer: ``"sgd"`` or ``"adam"``.
        reduction: The batch loss: ``"sum"`` over its questions (the paper's, which sets the
            scale of ``lr`` and ``clip``) or ``"mean"``.
        lr: Initial learning rate of the main schedule.
        anneal_every: Epochs between learning-rate halvings (0: constant).
        clip: Gradient-norm clipping threshold.
        linear_start: Linear start for a memory network (ignored by the other readers).
        linear_start_lr: Learning rate during linear start.
        linear_start_epochs: Epochs of linear start.
        seed: Seed of initialisation, noise and batch order.
    """

    epochs: int = 100
    batch_size: int = 32
    optimizer: str = "sgd"
    reduction: str = "sum"
    lr: float = 0.005
    anneal_every: int = 25
    clip: float = 40.0
    linear_start: bool = True
    linear_start_lr: float = 0.005
    linear_start_epochs: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {self.reduction!r}")
        for name in ("epochs", "batch_size", "linear_start_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0 or not self.linear_start_lr > 0:
            raise ValueError("lr and linear_start_lr must be positive")


@dataclass
class QAHistory:
    """Per epoch: training loss (per question), validation loss and error, linear start; and
    ``changes``: one ``{"after_epoch": n, "changed": {setting: [before, after]}}`` per resume
    with changed settings (more epochs)."""

    loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    valid_error: list[float] = field(default_factory=list)
    linear: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)


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
            loss += float(answer_loss(logits, batch.answers)) * int(labelled.sum())
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


def _optimizer(reader: Reader, config: QATrainConfig, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(reader.parameters(), lr=lr)
    return torch.optim.Adam(reader.parameters(), lr=lr)


def fit(
    reader: Reader,
    train: QABatch,
    valid: QABatch,
    config: QATrainConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> QAHistory:
    """Train ``reader`` and keep the weights of its best validation epoch.

    The kept epoch is the one with the lowest validation error (then loss; the earliest of
    ties) among those after linear start. Every epoch ends with an atomic checkpoint; when
    ``checkpoint`` exists the run resumes from it exactly, provided it was made with the same
    settings (`hybrid.saved.load_checkpoint`: only ``epochs`` may change, recorded in
    `QAHistory.changes`).

    Args:
        reader: The model (its device is the training device).
        train: The collated training questions (`hybrid.qa.batching.collate`).
        valid: The collated validation questions.
        config: Optimisation settings.
        checkpoint: Where to keep the resumable state, or ``None``.
        progress: Show a progress bar over epochs.
        log: Where the resume message goes.

    Returns:
        The `QAHistory` of the run (including epochs before a resume).

    Raises:
        ValueError: naming ``checkpoint``, when it is not a reader checkpoint (truncated, or
            another file) or was made with other settings than ``reader.config`` and
            ``config`` (other than ``epochs``).
    """
    settings = {"model": asdict(reader.config), "training": asdict(config)}
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = next(reader.parameters()).device
    linear = config.linear_start and reader.config.kind == "memory"
    history, best, best_state = QAHistory(), (math.inf, math.inf), None
    linear_epochs, main_epochs = 0, 0
    optimizer = _optimizer(reader, config, config.linear_start_lr if linear else config.lr)
    if checkpoint is not None and checkpoint.exists():
        state, changes = load_checkpoint(checkpoint, "reader checkpoint", settings, reader)
        reader.load_state_dict(state["model"])
        linear, linear_epochs, main_epochs = state["linear"], state["linear_epochs"], state["main"]
        optimizer = _optimizer(reader, config, config.lr)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = QAHistory(**state["history"])
        best, best_state = tuple(state["best"]), state["best_model"]
        if changes:
            history.changes.append({"after_epoch": len(history.loss), "changed": changes})
        log(f"resumed from {checkpoint} after epoch {len(history.loss)}")
    total = (config.linear_start_epochs if linear else 0) + config.epochs
    bar = tqdm(total=total, initial=len(history.loss), disable=not progress, leave=False)
    while main_epochs < config.epochs:
        if hasattr(reader.model, "linear_start"):
            reader.model.linear_start = linear
        if not linear:
            halvings = main_epochs // config.anneal_every if config.anneal_every else 0
            for group in optimizer.param_groups:
                group["lr"] = config.lr * 0.5**halvings
        reader.train()
        begin, loss_sum, steps = time.perf_counter(), 0.0, 0
        bucket = reader.config.kind != "memory"  # the LSTM readers pay for padded text
        for batch in batches(
            train, config.batch_size, shuffle=True, generator=generator, bucket=bucket
        ):
            batch = batch.to(device)
            optimizer.zero_grad()
            logits, _ = reader(batch)
            loss = answer_loss(logits, batch.answers, config.reduction)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reader.parameters(), config.clip)
            optimizer.step()
            loss_sum, steps = loss_sum + float(loss.detach()) / len(batch), steps + 1
        scores = evaluate(reader, valid)
        history.loss.append(loss_sum / max(steps, 1))
        history.valid_loss.append(scores["loss"])
        history.valid_error.append(scores["error"])
        history.linear.append(linear)
        history.seconds.append(time.perf_counter() - begin)
        if linear:
            linear_epochs += 1
            linear = linear_epochs < config.linear_start_epochs  # then the softmax goes back in
        else:
            main_epochs += 1
            if (scores["error"], scores["loss"]) < best:
                best = (scores["error"], scores["loss"])
                best_state = {k: v.detach().clone() for k, v in reader.state_dict().items()}
        bar.update()
        bar.set_postfix(error=f"{100 * scores['error']:.1f}%", linear=linear)
        if checkpoint is not None:
            save_atomic(
                {
                    **stamp("reader checkpoint"),
                    "settings": settings,
                    "model": reader.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": asdict(history),
                    "best": list(best),
                    "best_model": best_state,
                    "linear": linear,
                    "linear_epochs": linear_epochs,
                    "main": main_epochs,
                },
                checkpoint,
            )
    bar.close()
    if hasattr(reader.model, "linear_start"):
        reader.model.linear_start = False
    if best_state is not None:
        reader.load_state_dict(best_state)
    return history


def save_reader(path: Path, reader: Reader, vocabulary: QAVocabulary) -> None:
    """Save a trained reader: architecture, vocabularies and weights, as plain data."""
    save_trained(path, reader, vocabulary, "reader")


def load_reader(path: Path) -> tuple[Reader, QAVocabulary]:
    """Load a reader saved by `save_reader` (``weights_only=True``), in evaluation mode.

    Raises:
        ValueError: naming ``path``, when it is missing, not a saved reader (truncated,
            another format, or another kind of model or a checkpoint: see
            `hybrid.saved.load_saved`).
    """
    state = load_saved(path, "reader")
    vocabulary = QAVocabulary.from_dict(state["vocabulary"])
    reader = Reader(ReaderConfig(**state["config"]), vocabulary)
    reader.load_state_dict(state["model"])
    return reader.eval(), vocabulary
