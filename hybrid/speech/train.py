"""Training and running acoustic models: cross-entropy on frame or utterance targets, or CTC.

`fit_acoustic` trains any model of `hybrid.speech.acoustic` with Adam on frame targets (one
pdf or word id per frame, ``-1`` = ignore), one class per utterance, or symbol sequences with
the CTC loss. The epoch with the best accuracy on a development set is kept: the one given,
or else a tenth of the training utterances (fixed by the seed) held out. A checkpoint is
written atomically after every epoch and a rerun resumes from it exactly (model, optimiser,
random state, history), with the same settings (more epochs allowed).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..ctc.align import greedy_decode
from ..ctc.loss import ctc_loss
from ..files import save_atomic
from ..saved import load_checkpoint, stamp
from .augment import SpecAugment
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
        seed: Seeds shuffling, dropout, the masks and the held-out split (`fit_acoustic`
            takes the network built: its initial weights are the caller's).
        valid_share: Share of training utterances held out to pick the epoch.
        spec_augment: Masks applied to every training batch (`SpecAugment`), or ``None``.
    """

    epochs: int = 15
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 5.0
    seed: int = 0
    valid_share: float = 0.1
    spec_augment: SpecAugment | None = None


def _split(count: int, config: AcousticTrainConfig) -> tuple[list[int], list[int]]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(config.seed)).tolist()
    held = max(1, round(config.valid_share * count)) if count > 1 else 0
    return sorted(order[held:]), sorted(order[:held])


def _joined(features, targets, valid_features, valid_targets):
    """The training and development utterances as one list (and targets), with the indices
    of each part."""
    if len(valid_features) != len(valid_targets) or not valid_features:
        raise ValueError(
            f"valid must hold as many targets as features, at least one: "
            f"{len(valid_features)} vs {len(valid_targets)}"
        )
    if isinstance(targets, Tensor):
        joined = torch.cat([targets, valid_targets])
    else:
        joined = list(targets) + list(valid_targets)
    count = len(features)
    index = list(range(count)), list(range(count, count + len(valid_features)))
    return list(features) + list(valid_features), joined, *index


def _padded_targets(targets: list[Tensor], index: list[int], width: int) -> Tensor:
    y = torch.full((len(index), width), -1, dtype=torch.long)
    for row, i in enumerate(index):
        y[row, : len(targets[i])] = targets[i]
    return y


class _Objective:
    """Cross-entropy on frame targets (``(T_i,)`` each, ``-1`` ignored) or on utterance
    classes (one ``(N,)`` tensor); accuracy counts frames or utterances."""

    def batch(self, features, targets, index: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        x, lengths = pad_features([features[i] for i in index])
        if isinstance(targets, Tensor):
            return x, lengths, targets[index]
        return x, lengths, _padded_targets(targets, index, x.shape[1])

    def loss(self, logits: Tensor, lengths: Tensor, y: Tensor) -> Tensor:
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1
        )

    def correct(self, logits: Tensor, lengths: Tensor, y: Tensor) -> tuple[int, int]:
        predicted, keep = logits.argmax(-1), y >= 0
        return int((predicted[keep] == y[keep]).sum()), int(keep.sum())


class _CTCObjective(_Objective):
    """CTC on symbol sequences (``(L_i,)`` each); accuracy counts utterances whose greedy
    decoding is exactly right."""

    def __init__(self, blank: int) -> None:
        self.blank = blank

    def batch(self, features, targets, index):
        x, lengths = pad_features([features[i] for i in index])
        width = max(1, max(len(targets[i]) for i in index))
        return x, lengths, _padded_targets(targets, index, width)

    def loss(self, logits, lengths, y):
        return ctc_loss(logits.log_softmax(-1), y, lengths, blank=self.blank, zero_infinity=True)

    def correct(self, logits, lengths, y):
        labels, counts, _ = greedy_decode(logits.detach(), lengths, self.blank)
        right = 0
        for row in range(len(y)):
            target = y[row][y[row] >= 0]
            right += int(torch.equal(labels[row, : counts[row]], target))
        return right, len(y)


def _evaluate(
    model, objective, features, targets, index: list[int], batch_size: int
) -> tuple[float, float]:
    """Held-out accuracy and mean loss per batch."""
    right = total = 0
    losses = []
    model.eval()
    with torch.no_grad():
        for begin in range(0, len(index), batch_size):
            x, lengths, y = objective.batch(features, targets, index[begin : begin + batch_size])
            logits = model(x, lengths)
            r, n = objective.correct(logits, lengths, y)
            right, total = right + r, total + n
            losses.append(float(objective.loss(logits, lengths, y)))
    return right / max(total, 1), sum(losses) / max(len(losses), 1)


def fit_acoustic(
    model: nn.Module,
    features: list[Tensor],
    targets: list[Tensor] | Tensor,
    config: AcousticTrainConfig,
    checkpoint: Path | None = None,
    progress: bool = False,
    ctc_blank: int | None = None,
    valid: tuple[list[Tensor], list[Tensor] | Tensor] | None = None,
) -> list[dict]:
    """Train ``model`` in place and load its best held-out epoch.

    Args:
        model: A model of `hybrid.speech.acoustic` (its normaliser is set here).
        features: Per utterance ``(T_i, D)``.
        targets: Per utterance ``(T_i,)`` frame targets (``-1``: ignored), ``(N,)``
            utterance classes, or (with ``ctc_blank``) per utterance its ``(L_i,)`` symbols.
        config: Optimisation settings.
        checkpoint: Where to save after every epoch and resume from (made with the same
            settings, `hybrid.saved.load_checkpoint`: only ``epochs`` may change).
        progress: Show a progress bar over epochs.
        ctc_blank: Train with the CTC loss, this being the blank symbol.
        valid: Development features and targets (of the same kind as ``targets``) on which
            the epoch is chosen; ``None``: ``config.valid_share`` of the training utterances
            are held out instead.

    Returns:
        One dict per epoch: ``epoch``, ``loss`` (mean training cross-entropy),
        ``valid_accuracy`` (frames, or utterances: classes right, CTC greedy decoding
        exactly right), ``valid_loss``, ``seconds``; and ``changes``,
        ``{setting: [before, after]}``, on the last epoch before a resume that changed
        settings (more epochs). The kept epoch has the best held-out accuracy, ties broken
        by the lower held-out loss.

    Raises:
        ValueError: ``features`` and ``targets`` (or those of ``valid``) differ in length or
            are empty; or, naming
            ``checkpoint``, it is not an acoustic checkpoint (truncated, or another file) or
            was made with other settings than ``model.config`` and ``config`` (other than
            ``epochs``).
    """
    if len(features) != len(targets):
        raise ValueError(
            f"features and targets differ in length: {len(features)} vs {len(targets)}"
        )
    if not features:
        raise ValueError("features must hold at least one utterance")
    if valid is None:
        train, valid_index = _split(len(features), config)
    else:
        features, targets, train, valid_index = _joined(features, targets, *valid)
    model.set_normaliser([features[i] for i in train])
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    settings = {"model": asdict(model.config), "training": asdict(config)}
    state = {"epoch": 0, "history": [], "best": None, "best_score": [-1.0, -float("inf")]}
    if checkpoint is not None and checkpoint.exists():
        saved, changes = load_checkpoint(checkpoint, "acoustic checkpoint", settings, model)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
        if changes:
            state["history"][-1]["changes"] = changes
    else:
        torch.manual_seed(config.seed)
    objective = _Objective() if ctc_blank is None else _CTCObjective(ctc_blank)
    bar = tqdm(range(state["epoch"], config.epochs), desc="acoustic", disable=not progress)
    for epoch in bar:
        begin, losses = time.perf_counter(), []
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for start in range(0, len(order), config.batch_size):
            index = [train[i] for i in order[start : start + config.batch_size]]
            x, lengths, y = objective.batch(features, targets, index)
            if config.spec_augment is not None:
                x = config.spec_augment(x, lengths, generator)
            loss = objective.loss(model(x, lengths), lengths, y)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            losses.append(float(loss.detach()))
        accuracy, valid_loss = (
            _evaluate(model, objective, features, targets, valid_index, config.batch_size)
            if valid_index
            else (0.0, 0.0)
        )
        row = {
            "epoch": epoch + 1,
            "loss": sum(losses) / len(losses),
            "valid_accuracy": accuracy,
            "valid_loss": valid_loss,
            "seconds": time.perf_counter() - begin,
        }
        state["history"].append(row)
        # Accuracy first; the held-out loss breaks ties (CTC's exact-match accuracy stays at
        # zero for many epochs while its loss falls).
        if (accuracy, -valid_loss) > tuple(state["best_score"]):
            state["best_score"] = [accuracy, -valid_loss]
            state["best"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state["epoch"] = epoch + 1
        bar.set_postfix(loss=f"{row['loss']:.3f}", valid=f"{accuracy:.3f}")
        if checkpoint is not None:
            save_atomic(
                {
                    **stamp("acoustic checkpoint"),
                    "settings": settings,
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
