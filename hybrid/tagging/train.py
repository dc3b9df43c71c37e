"""Training and evaluation of a `Tagger`: its task for the training engine
(`hybrid.training`) and its scores; a trained tagger saves itself (`Tagger.save`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..batching import bucketed_batches
from ..training import History, Task, TrainConfig
from ..training import train as run_training
from .batching import TaggingVocabulary, batches
from .corpus import Sentence
from .metrics import label_scores, span_scores
from .model import Tagger


@dataclass(frozen=True)
class TaggerTrainConfig(TrainConfig):
    """Optimisation settings of a tagger (`hybrid.training.TrainConfig`), stopping after
    ``patience`` = 8 epochs without a better development score."""

    patience: int = 8


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
    of ``model`` on ``sentences`` (`score_tags` of its `predict_tags`)."""
    predicted, intents = predict_tags(model, vocabulary, sentences)
    return score_tags(sentences, predicted, intents, scheme)


def score_tags(
    sentences: Sequence[Sentence],
    predicted: Sequence[Sequence[str]],
    intents: Sequence[str | None],
    scheme: str | None = "BIO",
) -> dict:
    """The scores of `evaluate` for the ``predicted`` tags and ``intents`` of ``sentences``
    (one each, in order, as `predict_tags` gives them): those of `span_scores` (of
    `label_scores` when ``scheme`` is ``None``), with ``"intent_accuracy"`` where the
    sentences and the predictions have intents."""
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


class TaggingTask(Task):
    """Training a `Tagger` (`hybrid.training.Task`): batches of sentences of similar length,
    the tagger's loss (a mean over sentences), development span F1 (with the intent
    accuracy, `selection_score`)."""

    kind = "tagger checkpoint"

    def __init__(
        self,
        model: Tagger,
        vocabulary: TaggingVocabulary,
        train: Sequence[Sentence],
        valid: Sequence[Sentence] | None,
        config: TaggerTrainConfig,
        setup: dict | None = None,
    ) -> None:
        self.model, self.vocabulary, self.config, self.setup = model, vocabulary, config, setup
        self.train, self.valid = train, valid
        self.lengths = [len(s.words) for s in train]

    def settings(self) -> dict:
        run = {} if self.setup is None else {"run": self.setup}
        return {"model": asdict(self.model.config), **run}

    def plan(self, generator: torch.Generator) -> list[list[int]]:
        return bucketed_batches(self.lengths, self.config.batch_size, generator)

    def loss(self, batch: Sequence[int], generator: torch.Generator) -> tuple[Tensor, float]:
        device = next(self.model.parameters()).device
        sentences = self.vocabulary.batch([self.train[i] for i in batch]).to(device)
        return self.model.loss(sentences) * len(batch), len(batch)

    def evaluate(self, model: nn.Module) -> dict[str, float] | None:
        if self.valid is None:
            return None
        scores = evaluate(model, self.vocabulary, self.valid, self.model.config.scheme)
        return {
            "dev_f1": scores["f1"],
            "dev_intent_accuracy": scores.get("intent_accuracy", math.nan),
        }

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        entry = {"f1": metrics["dev_f1"]}
        if not math.isnan(metrics["dev_intent_accuracy"]):
            entry["intent_accuracy"] = metrics["dev_intent_accuracy"]
        return (selection_score(entry),)

    def describe(self) -> str:
        return self.model.config.head


def fit(
    model: Tagger,
    vocabulary: TaggingVocabulary,
    train: Sequence[Sentence],
    valid: Sequence[Sentence] | None,
    config: TaggerTrainConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    setup: dict | None = None,
    save_every: int = 0,
) -> History:
    """Train ``model`` (`hybrid.training.train` over a `TaggingTask`), keeping its best
    development epoch by `selection_score`.

    With ``valid=None`` it trains exactly ``config.epochs`` epochs and keeps the last weights
    (the refit on all labelled data, once the epoch count is known).

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
        save_every: Also checkpoint every this many steps within an epoch.

    Returns:
        The `hybrid.training.History` of the run (including epochs before a resume):
        ``loss``, ``dev_f1``, ``dev_intent_accuracy`` (NaN without intents), ``seconds``.

    Raises:
        ValueError: naming ``checkpoint``, when it is not a tagger checkpoint (truncated, or
            another file) or was made with other settings than ``model.config`` and
            ``config`` (other than ``epochs``), or another ``setup``.
    """
    task = TaggingTask(model, vocabulary, train, valid, config, setup)
    return run_training(task, checkpoint, progress=progress, log=log, save_every=save_every)
