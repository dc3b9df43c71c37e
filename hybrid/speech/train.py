"""Training and running acoustic models: cross-entropy on frame or utterance targets.

`fit_acoustic` trains any model of `hybrid.speech.acoustic` with Adam on either frame targets
(one pdf or word id per frame, ``-1`` = ignore) or one class per utterance. A tenth of the
training utterances (fixed by the seed) is held out; the epoch with the best held-out accuracy
is kept. A checkpoint is written atomically after every epoch and a rerun resumes from it
exactly (model, optimiser, random state, history).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..files import check_same_setup, save_atomic
from .features import pad_features

__all__ = ["AcousticTrainConfig", "fit_acoustic", "log_posteriors"]


@dataclass(frozen=True)
class AcousticTrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: Passes over the training utterances.
        batch_size: Utterances per step.
        lr: Adam learning rate.
        clip: Gradient norm clipping.
        seed: Seeds initialisation, shuffling, dropout and the held-out split.
        valid_share: Share of training utterances held out to pick the epoch.
    """

    epochs: int = 15
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 5.0
    seed: int = 0
    valid_share: float = 0.1


def _split(count: int, config: AcousticTrainConfig) -> tuple[list[int], list[int]]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(config.seed)).tolist()
    held = max(1, round(config.valid_share * count)) if count > 1 else 0
    return sorted(order[held:]), sorted(order[:held])


def _batch(features: list[Tensor], targets: list[Tensor] | Tensor, index: list[int]):
    x, lengths = pad_features([features[i] for i in index])
    if isinstance(targets, Tensor):
        return x, lengths, targets[index]
    y = torch.full(x.shape[:2], -1, dtype=torch.long)
    for row, i in enumerate(index):
        y[row, : len(targets[i])] = targets[i]
    return x, lengths, y


def _accuracy(model: nn.Module, features, targets, index: list[int], batch_size: int) -> float:
    right = total = 0
    model.eval()
    with torch.no_grad():
        for begin in range(0, len(index), batch_size):
            x, lengths, y = _batch(features, targets, index[begin : begin + batch_size])
            predicted = model(x, lengths).argmax(-1)
            keep = y >= 0
            right += int((predicted[keep] == y[keep]).sum())
            total += int(keep.sum())
    return right / max(total, 1)


def fit_acoustic(
    model: nn.Module,
    features: list[Tensor],
    targets: list[Tensor] | Tensor,
    config: AcousticTrainConfig,
    checkpoint: Path | None = None,
    progress: bool = False,
) -> list[dict]:
    """Train ``model`` in place and load its best held-out epoch.

    Args:
        model: A model of `hybrid.speech.acoustic` (its normaliser is set here).
        features: Per utterance ``(T_i, D)``.
        targets: Per utterance ``(T_i,)`` frame targets (``-1``: ignored), or ``(N,)``
            utterance classes.
        config: Optimisation settings.
        checkpoint: Where to save after every epoch and resume from.
        progress: Show a progress bar over epochs.

    Returns:
        One dict per epoch: ``epoch``, ``loss`` (mean training cross-entropy),
        ``valid_accuracy`` (frames or utterances), ``seconds``.
    """
    if len(features) != len(targets):
        raise ValueError(
            f"features and targets differ in length: {len(features)} vs {len(targets)}"
        )
    if not features:
        raise ValueError("features must hold at least one utterance")
    train, valid = _split(len(features), config)
    model.set_normaliser([features[i] for i in train])
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    state = {"epoch": 0, "history": [], "best": None, "best_accuracy": -1.0}
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=True)
        check_same_setup(checkpoint, saved["config"], asdict(config))
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
    else:
        torch.manual_seed(config.seed)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
    bar = tqdm(range(state["epoch"], config.epochs), desc="acoustic", disable=not progress)
    for epoch in bar:
        begin, losses = time.perf_counter(), []
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for start in range(0, len(order), config.batch_size):
            x, lengths, y = _batch(
                features, targets, [train[i] for i in order[start : start + config.batch_size]]
            )
            logits = model(x, lengths)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            losses.append(float(loss.detach()))
        accuracy = _accuracy(model, features, targets, valid, config.batch_size) if valid else 0.0
        row = {
            "epoch": epoch + 1,
            "loss": sum(losses) / len(losses),
            "valid_accuracy": accuracy,
            "seconds": time.perf_counter() - begin,
        }
        state["history"].append(row)
        if accuracy > state["best_accuracy"]:
            state["best_accuracy"] = accuracy
            state["best"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state["epoch"] = epoch + 1
        bar.set_postfix(loss=f"{row['loss']:.3f}", valid=f"{accuracy:.3f}")
        if checkpoint is not None:
            save_atomic(
                {
                    "config": asdict(config),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "state": state,
                },
                checkpoint,
            )
    model.load_state_dict(state["best"])
    model.eval()
    return state["history"]


def log_posteriors(model: nn.Module, features: list[Tensor], batch_size: int = 64) -> list[Tensor]:
    """Per utterance ``(T_i, C)`` log-softmax of a frame model's outputs (evaluation mode)."""
    model.eval()
    out: list[Tensor] = []
    with torch.no_grad():
        for begin in range(0, len(features), batch_size):
            chunk = features[begin : begin + batch_size]
            x, lengths = pad_features(chunk)
            scores = torch.log_softmax(model(x, lengths), -1)
            out += [scores[b, : len(f)] for b, f in enumerate(chunk)]
    return out
