"""Training acoustic models: cross-entropy on frame or utterance targets, or CTC, as a task
of the training engine (`hybrid.training`), and running them.

`fit_acoustic` trains any model of `hybrid.speech.acoustic` (`AcousticTask` over
`hybrid.training.train`) on frame targets (one pdf or word id per frame, ``-1`` = ignore),
one class per utterance, or symbol sequences with the CTC loss. The epoch with the best
accuracy on a development set is kept: the one given, or else a tenth of the training
utterances (fixed by the seed) held out. The engine owns the optimiser, the checkpoints and
the exact resume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..ctc.align import greedy_decode
from ..ctc.loss import ctc_loss
from ..saved import load_saved
from ..training import History, Task, TrainConfig
from ..training import train as run_training
from .augment import SpecAugment
from .features import pad_features

__all__ = [
    "AcousticTask",
    "AcousticTrainConfig",
    "fit_acoustic",
    "log_posteriors",
    "targets_digest",
]


@dataclass(frozen=True)
class AcousticTrainConfig(TrainConfig):
    """Optimisation settings of an acoustic model (`hybrid.training.TrainConfig`: Adam at
    0.001, batches of 32 utterances, clipping at 5), for 15 epochs.

    ``seed`` also fixes the held-out split (`fit_acoustic` takes the network built: its
    initial weights are the caller's).

    Attributes:
        valid_share: Share of training utterances held out to pick the epoch (when no
            development set is given).
        spec_augment: Masks applied to every training batch (`SpecAugment`), or ``None``.
    """

    epochs: int = 15
    valid_share: float = 0.1
    spec_augment: SpecAugment | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.valid_share < 1:
            raise ValueError(f"valid_share must lie in [0, 1), got {self.valid_share!r}")


def _split(count: int, config: AcousticTrainConfig) -> tuple[list[int], list[int]]:
    """The training and held-out indices of ``count`` utterances: ``valid_share`` of them (at
    least one, none of a single utterance) held out, drawn with ``seed``."""
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


def targets_digest(targets: list[Tensor] | Tensor) -> str:
    """The SHA-256 of ``targets`` (per utterance ``(T_i,)`` or ``(L_i,)``, or ``(N,)``
    classes): equal for equal targets, whatever their container."""
    digest = hashlib.sha256()
    for row in [targets] if isinstance(targets, Tensor) else targets:
        values = row.detach().to("cpu", torch.int64).contiguous()
        digest.update(len(values).to_bytes(8, "little") + values.numpy().tobytes())
    return digest.hexdigest()


def _padded_targets(targets: list[Tensor], index: Sequence[int], width: int) -> Tensor:
    y = torch.full((len(index), width), -1, dtype=torch.long)
    for row, i in enumerate(index):
        y[row, : len(targets[i])] = targets[i]
    return y


class _Objective:
    """Cross-entropy on frame targets (``(T_i,)`` each, ``-1`` ignored) or on utterance
    classes (one ``(N,)`` tensor); accuracy counts frames or utterances."""

    def batch(
        self, features, targets, index: Sequence[int], device: torch.device
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The utterances ``index`` on ``device``: padded features ``(B, T, D)``, lengths
        ``(B,)`` and targets, ``(B, T)`` frames (``-1`` padded) or ``(B,)`` classes."""
        x, lengths = pad_features([features[i] for i in index])
        if isinstance(targets, Tensor):
            y = targets[list(index)]
        else:
            y = _padded_targets(targets, index, x.shape[1])
        return x.to(device), lengths.to(device), y.to(device)

    def loss(self, logits: Tensor, lengths: Tensor, y: Tensor) -> tuple[Tensor, int]:
        """The cross-entropy summed over the targets that are not ``-1`` (frames, or
        utterances), and how many there are."""
        y = y.reshape(-1)
        total = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y, ignore_index=-1, reduction="sum"
        )
        return total, int((y >= 0).sum())

    def correct(self, logits: Tensor, lengths: Tensor, y: Tensor) -> tuple[int, int]:
        predicted, keep = logits.argmax(-1), y >= 0
        return int((predicted[keep] == y[keep]).sum()), int(keep.sum())


class _CTCObjective(_Objective):
    """CTC on symbol sequences (``(L_i,)`` each); accuracy counts utterances whose greedy
    decoding is exactly right."""

    def __init__(self, blank: int) -> None:
        self.blank = blank

    def batch(self, features, targets, index, device):
        x, lengths = pad_features([features[i] for i in index])
        width = max(1, max(len(targets[i]) for i in index))
        y = _padded_targets(targets, index, width)
        return x.to(device), lengths.to(device), y.to(device)

    def loss(self, logits, lengths, y):
        """The CTC loss of each utterance divided by its number of symbols (at least 1: the
        terms of `hybrid.ctc.loss.ctc_loss`'s ``"mean"``), summed, and the number of
        utterances. Targets the frames cannot hold count zero."""
        losses = ctc_loss(
            logits.log_softmax(-1),
            y,
            lengths,
            blank=self.blank,
            reduction="none",
            zero_infinity=True,
        )
        symbols = (y >= 0).sum(1).clamp_min(1)
        return (losses / symbols).sum(), len(y)

    def correct(self, logits, lengths, y):
        labels, counts, _ = greedy_decode(logits.detach(), lengths, self.blank)
        right = 0
        for row in range(len(y)):
            target = y[row][y[row] >= 0]
            right += int(torch.equal(labels[row, : counts[row]], target))
        return right, len(y)


def _evaluate(
    model: nn.Module, objective: _Objective, features, targets, index: list[int], batch_size: int
) -> tuple[float, float]:
    """Accuracy on the utterances ``index`` and the mean over their batches of each batch's
    loss per unit (frame, or utterance)."""
    right = total = 0
    losses = []
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for begin in range(0, len(index), batch_size):
            chunk = index[begin : begin + batch_size]
            x, lengths, y = objective.batch(features, targets, chunk, device)
            logits = model(x, lengths)
            r, n = objective.correct(logits, lengths, y)
            right, total = right + r, total + n
            loss, units = objective.loss(logits, lengths, y)
            losses.append(float(loss / units))
    return right / max(total, 1), sum(losses) / max(len(losses), 1)


class AcousticTask(Task):
    """Training an acoustic model (`hybrid.training.Task`): shuffled batches of training
    utterances, optionally masked (`SpecAugment`), their summed cross-entropy or CTC loss,
    and the held-out accuracy and loss, the accuracy deciding (ties: the lower loss).

    The utterances are prepared as `fit_acoustic` describes: ``valid`` joined to the
    training utterances, or a held-out share of them split off (`AcousticTrainConfig`), and
    the model's normaliser set on the training part.

    Items are utterance indices into ``features``; `loss` sums over frames that have a
    target (frame cross-entropy), over utterances (utterance classes) or over utterances of
    their CTC loss per target symbol (CTC), and gives the count as its units.

    Raises:
        ValueError: ``features`` and ``targets`` (or those of ``valid``) differ in length or
            are empty.
    """

    kind = "acoustic checkpoint"

    def __init__(
        self,
        model: nn.Module,
        features: list[Tensor],
        targets: list[Tensor] | Tensor,
        config: AcousticTrainConfig,
        ctc_blank: int | None = None,
        valid: tuple[list[Tensor], list[Tensor] | Tensor] | None = None,
    ) -> None:
        if len(features) != len(targets):
            raise ValueError(
                f"features and targets differ in length: {len(features)} vs {len(targets)}"
            )
        if not features:
            raise ValueError("features must hold at least one utterance")
        if valid is None:
            train, held = _split(len(features), config)
        else:
            features, targets, train, held = _joined(features, targets, *valid)
        self.model, self.config, self.ctc_blank = model, config, ctc_blank
        self.features, self.targets, self.train, self.held = features, targets, train, held
        self.objective = _Objective() if ctc_blank is None else _CTCObjective(ctc_blank)
        model.set_normaliser([features[i] for i in train])

    def settings(self) -> dict:
        """The model's settings, and under ``"run"`` the CTC blank (``None``: cross-entropy),
        how many utterances train and are held out, and the `targets_digest` of their
        targets (a realignment changes them: a checkpoint of other targets is not resumed)."""
        run = {
            "ctc_blank": self.ctc_blank,
            "train": len(self.train),
            "held_out": len(self.held),
            "targets": targets_digest(self.targets),
        }
        return {"model": asdict(self.model.config), "run": run}

    def plan(self, generator: torch.Generator) -> list[list[int]]:
        order = torch.randperm(len(self.train), generator=generator).tolist()
        size = self.config.batch_size
        return [
            [self.train[i] for i in order[start : start + size]]
            for start in range(0, len(order), size)
        ]

    def loss(self, batch: Sequence[int], generator: torch.Generator) -> tuple[Tensor, float]:
        device = next(self.model.parameters()).device
        x, lengths, y = self.objective.batch(self.features, self.targets, batch, device)
        if self.config.spec_augment is not None:
            x = self.config.spec_augment(x, lengths, generator)
        return self.objective.loss(self.model(x, lengths), lengths, y)

    def evaluate(self, model: nn.Module) -> dict[str, float] | None:
        if not self.held:
            return None
        accuracy, loss = _evaluate(
            model, self.objective, self.features, self.targets, self.held, self.config.batch_size
        )
        return {"valid_accuracy": accuracy, "valid_loss": loss}

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        # CTC's exact-match accuracy stays at zero for many epochs while its loss falls
        return metrics["valid_accuracy"], -metrics["valid_loss"]

    def describe(self) -> str:
        return self.model.config.kind + ("" if self.ctc_blank is None else " ctc")


def fit_acoustic(
    model: nn.Module,
    features: list[Tensor],
    targets: list[Tensor] | Tensor,
    config: AcousticTrainConfig,
    checkpoint: Path | None = None,
    progress: bool = False,
    ctc_blank: int | None = None,
    valid: tuple[list[Tensor], list[Tensor] | Tensor] | None = None,
    save_every: int = 0,
) -> History:
    """Train ``model`` in place (`hybrid.training.train` over an `AcousticTask`) and load its
    best held-out epoch.

    Args:
        model: A model of `hybrid.speech.acoustic` (its normaliser is set here), on the
            device to train on.
        features: Per utterance ``(T_i, D)``.
        targets: Per utterance ``(T_i,)`` frame targets (``-1``: ignored), ``(N,)``
            utterance classes, or (with ``ctc_blank``) per utterance its ``(L_i,)`` symbols.
        config: Optimisation settings.
        checkpoint: Where to save after every epoch and resume from (made with the same
            settings, `hybrid.saved.load_checkpoint`: only ``epochs`` may be raised); the
            epoch lines go to the file beside it with the suffix ``.log``. A checkpoint made
            for other targets (a pass whose alignment changed since, when an earlier pass
            trained on) is removed, and the network trains afresh.
        progress: Show a progress bar over each epoch's batches and print a line per epoch.
        ctc_blank: Train with the CTC loss, this being the blank symbol.
        valid: Development features and targets (of the same kind as ``targets``) on which
            the epoch is chosen; ``None``: ``config.valid_share`` of the training utterances
            are held out instead (none of a single utterance: the last epoch is kept).
        save_every: Also checkpoint every this many steps within an epoch (0: after each
            epoch only; `hybrid.training.train`).

    Returns:
        The `hybrid.training.History` of the run (epochs before a resume included): per
        epoch ``loss`` (the training loss per frame with a target, per utterance for
        utterance classes, per utterance of its CTC loss per symbol for CTC), ``lr``,
        ``seconds``, ``valid_accuracy`` (frames, or utterances: classes right, CTC greedy
        decoding exactly right) and ``valid_loss`` (the mean of the held-out batches' losses
        per unit); ``best_epoch``, the epoch kept (the best held-out accuracy, ties broken
        by the lower held-out loss), and ``changes``, the settings a resume raised.

    Raises:
        ValueError: ``features`` and ``targets`` (or those of ``valid``) differ in length or
            are empty; or, naming ``checkpoint``, it is not an acoustic checkpoint
            (truncated, or another file) or was made with other settings than
            ``model.config`` and ``config`` (other than ``epochs``), or other data sizes or
            another objective.
    """
    task = AcousticTask(model, features, targets, config, ctc_blank, valid)
    log = print if progress else (lambda line: None)
    if checkpoint is not None and Path(checkpoint).is_file():
        recorded = load_saved(checkpoint, "acoustic checkpoint").get("settings", {})
        digest = task.settings()["run"]["targets"]
        if recorded.get("run", {}).get("targets", digest) != digest:  # realigned since
            Path(checkpoint).unlink()
            log(f"{checkpoint}: made for other targets (realigned since); trained afresh")
    return run_training(task, checkpoint, progress=progress, log=log, save_every=save_every)


def log_posteriors(model: nn.Module, features: list[Tensor], batch_size: int = 64) -> list[Tensor]:
    """Per utterance ``(T_i, C)`` log-softmax of a frame model's outputs (evaluation mode),
    computed on the model's device and returned on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    out: list[Tensor] = []
    with torch.no_grad():
        for begin in range(0, len(features), batch_size):
            chunk = features[begin : begin + batch_size]
            x, lengths = pad_features(chunk)
            scores = torch.log_softmax(model(x.to(device), lengths.to(device)), -1).cpu()
            out += [scores[b, : len(f)] for b, f in enumerate(chunk)]
    return out
