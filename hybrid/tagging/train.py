"""Training and evaluation of a `Tagger`: resumable, with atomic checkpoints and progress bars."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ..distributed import (
    average_gradients,
    barrier,
    broadcast_parameters,
    check_in_sync,
    is_main,
    world,
)
from ..files import save_atomic
from ..saved import load_checkpoint, load_saved, save_trained, stamp
from .batching import TaggingVocabulary, batches
from .corpus import Sentence
from .metrics import label_scores, span_scores
from .model import Tagger, TaggerConfig


@dataclass
class TrainConfig:
    """Optimisation settings (plain data: saved in checkpoints).

    Attributes:
        epochs: Maximum number of passes over the training data.
        batch_size: Sentences per batch.
        lr: Adam learning rate.
        clip: Gradient-norm clipping threshold.
        patience: Stop after this many epochs without a better development score.
        seed: Seed of initialisation, dropout and batch order.
        average: Decay of an exponential moving average of the weights (Polyak averaging),
            updated after every step; development scores and the kept weights are then those
            of the average. ``0`` (default) keeps the raw weights.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 5.0
    patience: int = 8
    seed: int = 0
    average: float = 0.0

    def __post_init__(self):
        if not 0 <= self.average < 1:
            raise ValueError(f"average must lie in [0, 1), got {self.average!r}")


@dataclass
class History:
    """Per-epoch training loss and development scores (NaN where there was no evaluation),
    and ``changes``: one ``{"after_epoch": n, "changed": {setting: [before, after]}}`` per
    resume with changed settings (more epochs)."""

    loss: list[float] = field(default_factory=list)
    dev_f1: list[float] = field(default_factory=list)
    dev_intent_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)

    def best_epoch(self) -> int:
        """The 1-based epoch with the best `selection_score` (the earliest of ties)."""
        if not self.dev_f1 or all(math.isnan(f) for f in self.dev_f1):
            raise ValueError("the history holds no development scores")
        scores = []
        for f1, intent in zip(self.dev_f1, self.dev_intent_accuracy, strict=True):
            entry = {"f1": f1} if math.isnan(intent) else {"f1": f1, "intent_accuracy": intent}
            scores.append(-math.inf if math.isnan(f1) else selection_score(entry))
        return max(range(len(scores)), key=lambda e: (scores[e], -e)) + 1


def predict_tags(
    model: Tagger,
    vocabulary: TaggingVocabulary,
    sentences: Sequence[Sentence],
    batch_size: int = 64,
) -> tuple[list[list[str]], list[str | None]]:
    """Decoded tag strings and intents of ``sentences``, in order."""
    model.eval()
    device = next(model.parameters()).device
    tags: list[list[str]] = []
    intents: list[str | None] = []
    for batch in batches(sentences, vocabulary, batch_size, with_labels=False):
        out = model.predict(batch.to(device))
        for row, length in zip(out["tags"].tolist(), batch.lengths.tolist(), strict=True):
            tags.append(vocabulary.tags.decode(row[:length]))
        if "intents" in out:
            intents.extend(vocabulary.intents.decode(out["intents"].tolist()))
        else:
            intents.extend([None] * len(batch.lengths))
    return tags, intents


def evaluate(
    model: Tagger,
    vocabulary: TaggingVocabulary,
    sentences: Sequence[Sentence],
    scheme: str | None = "BIO",
) -> dict:
    """Strict span precision/recall/F1 (`span_scores` in ``scheme``; token scores of plain
    labels, `label_scores`, when ``scheme`` is ``None``), token accuracy and intent accuracy
    on ``sentences``."""
    predicted, intents = predict_tags(model, vocabulary, sentences)
    gold = [list(s.tags) for s in sentences]
    if scheme is None:
        scores = label_scores(gold, predicted)
    else:
        scores = span_scores(gold, predicted, scheme=scheme)
    if sentences and sentences[0].intent is not None and intents[0] is not None:
        hits = sum(p == s.intent for p, s in zip(intents, sentences, strict=True))
        scores["intent_accuracy"] = hits / len(sentences)
    return scores


def selection_score(scores: dict) -> float:
    """Development score that picks the best epoch: span F1 (token accuracy for plain
    labels, where the micro F1 equals it), averaged with the intent
    accuracy when the data has intents (a joint model is chosen for both of its tasks)."""
    if "intent_accuracy" in scores:
        return (scores["f1"] + scores["intent_accuracy"]) / 2
    return scores["f1"]


def fit(
    model: Tagger,
    vocabulary: TaggingVocabulary,
    train: Sequence[Sentence],
    valid: Sequence[Sentence] | None,
    config: TrainConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    setup: dict | None = None,
) -> History:
    """Train ``model`` with Adam and gradient clipping, keeping its best development epoch.

    With ``valid=None`` it trains exactly ``config.epochs`` epochs and keeps the last weights
    (the refit on all labelled data, once the epoch count is known).

    Every epoch ends with an atomic checkpoint (settings, model, optimiser, random state, best
    weights, history); when ``checkpoint`` already exists the run resumes from it, provided it
    was made with the same settings and ``setup`` (`hybrid.saved.load_checkpoint`: only
    ``epochs`` may change, recorded in `History.changes`). At the end the model
    holds the weights of its best development epoch (by `selection_score`). Batches go to
    the device of the model's parameters (move the model first to train on a GPU). Under
    ``torchrun`` each process takes every ``world``-th batch and gradients are averaged
    (`hybrid.distributed`); only the first process logs and writes.

    Args:
        model: The tagger.
        vocabulary: Its vocabularies.
        train: Training sentences.
        valid: Development sentences (model selection and early stopping), or ``None``.
        config: Optimisation settings.
        checkpoint: Where to keep the resumable state, or ``None``.
        progress: Show progress bars.
        log: Where one line per epoch goes.
        setup: Settings of the run around this training that the model and the optimiser
            do not show, such as the data it trains on and how its labels are numbered
            (`hybrid.tagging.experiment.run_comparison` gives the corpus, the split sizes and
            ``refit``): recorded in the checkpoint as ``"run"`` and compared on resume.

    Returns:
        The `History` of the run (including epochs before a resume).

    Raises:
        ValueError: naming ``checkpoint``, when it is not a tagger checkpoint (truncated, or
            another file) or was made with other settings than ``model.config`` and
            ``config`` (other than ``epochs``), or another ``setup``.
    """
    settings = {"model": asdict(model.config), "training": asdict(config)}
    if setup is not None:
        settings["run"] = setup
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = History()
    device = next(model.parameters()).device
    averaged = None
    if config.average:
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.average))
    best_score, best_state, epoch = -1.0, None, 0
    if checkpoint is not None and checkpoint.exists():
        state, changes = load_checkpoint(checkpoint, "tagger checkpoint", settings, model)
        model.load_state_dict(state["model"])
        if averaged is not None:
            averaged.load_state_dict(state["averaged"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = History(**state["history"])
        best_score, best_state = state["best_score"], state["best_model"]
        epoch, stale = state["epoch"], state["stale"]
        if changes:
            history.changes.append({"after_epoch": epoch, "changed": changes})
        log(f"resumed from {checkpoint} after epoch {epoch}")
    else:
        stale = 0
    broadcast_parameters(model)
    scheme = model.config.scheme
    while epoch < config.epochs and stale < config.patience:
        model.train()
        begin, total, count = time.perf_counter(), 0.0, 0
        steps = -(-len(train) // config.batch_size)
        rank, size = world()
        shuffled = batches(train, vocabulary, config.batch_size, generator)
        mine = (b for i, b in enumerate(shuffled) if i % size == rank and i < steps - steps % size)
        bar = tqdm(
            mine,
            total=steps // size,
            desc=f"{model.config.head} epoch {epoch + 1}",
            disable=not progress or not is_main(),
            leave=False,
        )
        for batch in bar:
            optimizer.zero_grad()
            loss = model.loss(batch.to(device))
            loss.backward()
            average_gradients(model)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total, count = total + float(loss.detach()), count + 1
            bar.set_postfix(loss=f"{total / count:.3f}")
        kept = model if averaged is None else averaged.module
        if valid is None:  # no selection: the last epoch is the one kept
            scores = {"f1": float("nan")}
        else:
            scores = evaluate(kept, vocabulary, valid, scheme)
        epoch += 1
        history.loss.append(total / max(count, 1))
        history.dev_f1.append(scores["f1"])
        history.dev_intent_accuracy.append(scores.get("intent_accuracy", float("nan")))
        history.seconds.append(time.perf_counter() - begin)
        if valid is None or selection_score(scores) > best_score:
            best_score, stale = selection_score(scores), 0
            best_state = {k: v.detach().clone() for k, v in kept.state_dict().items()}
        else:
            stale += 1
        check_in_sync(model)
        if is_main():
            dev = "" if valid is None else f"dev F1 {100 * scores['f1']:.2f} "
            log(
                f"{model.config.head} epoch {epoch}: loss {history.loss[-1]:.4f} "
                f"{dev}({history.seconds[-1]:.1f} s)"
            )
        if checkpoint is not None and is_main():
            save_atomic(
                {
                    **stamp("tagger checkpoint"),
                    "settings": settings,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": asdict(history),
                    "best_score": best_score,
                    "best_model": best_state,
                    **({"averaged": averaged.state_dict()} if averaged is not None else {}),
                    "epoch": epoch,
                    "stale": stale,
                },
                checkpoint,
            )
    barrier()  # the last checkpoint is written before any process reads it again
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def save_tagger(path: Path, model: Tagger, vocabulary: TaggingVocabulary) -> None:
    """Save a trained tagger: weights, architecture and vocabularies, as plain data."""
    save_trained(path, model, vocabulary, "tagger")


def load_tagger(path: Path) -> tuple[Tagger, TaggingVocabulary]:
    """Load a tagger saved by `save_tagger` onto the CPU (``torch.load(weights_only=True)``).

    Raises:
        ValueError: naming ``path``, when it is missing, not a saved tagger (truncated,
            another format, or another kind of model or a checkpoint: see
            `hybrid.saved.load_saved`).
    """
    state = load_saved(path, "tagger")
    vocabulary = TaggingVocabulary.from_dict(state["vocabulary"])
    config = dict(state["config"])
    if "intent_pooling" not in config and vocabulary.intents is not None:
        config["intent_pooling"] = "last"  # saved before the option existed
    model = Tagger(TaggerConfig(**config), vocabulary)
    model.load_state_dict(state["model"])
    model.eval()
    return model, vocabulary
