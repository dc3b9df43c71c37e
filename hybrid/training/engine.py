"""The training loop of every domain: one `train` over a domain's `Task`.

A domain says what it trains and how well it does (`Task`: the model, the batches of an
epoch, the loss of a batch, the development metrics and which way is better); `train` does
the rest, the same way for taggers, parsers, readers and acoustic models:

- seeding, and the random states of Python, NumPy, torch and CUDA in every checkpoint;
- an atomic checkpoint after every epoch (and every ``save_every`` steps), from which a run
  killed at any moment resumes exactly, bit for bit on CPU; a checkpoint made with other
  settings is refused, naming them (only the epochs may be raised);
- the best epoch by the development score, patience, gradient clipping, an exponential
  moving average of the weights, step decay of the learning rate;
- a progress bar with the loss and the speed, one line per epoch to ``log`` and to a log
  file beside the checkpoint;
- data parallelism under ``torchrun``: every process draws the same batches and computes
  the loss of its share of each batch (every ``world``-th item); the gradients are summed,
  so a step of N processes is the step of one process on the whole batch, and the effective
  batch is ``batch_size`` whatever the number of processes;
- mixed precision (``amp``): the loss under `torch.autocast` (float16 with a gradient scaler
  on CUDA, bfloat16 on CPU); the structured layers run their dynamic programs in float32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ..files import save_atomic
from ..saved import load_checkpoint, stamp
from . import distributed
from .randomness import derived_seed, random_states, restore_random_states, seed_everything

__all__ = ["History", "Task", "TrainConfig", "resolve_device", "train"]

_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings every domain shares (plain data: recorded in checkpoints and
    compared on resume). Each domain's settings extend these.

    Attributes:
        epochs: Passes over the training data.
        batch_size: Items per step (sentences, trees, questions, utterances), over all
            processes together.
        lr: Learning rate.
        clip: Gradient-norm clipping threshold (0: none).
        seed: Seed of the batch order, dropout and every other draw of the training (the
            model's initial weights are drawn before, by its builder).
        patience: Stop after this many epochs without a better development score (0: never).
        average: Decay of an exponential moving average of the weights (Polyak averaging),
            updated after every step; development scores and the kept weights are then those
            of the average. ``0`` keeps the raw weights.
        optimizer: ``"adam"`` or ``"sgd"``.
        anneal_every: Multiply the learning rate by ``anneal_factor`` every this many epochs
            (0: a constant learning rate).
        anneal_factor: See ``anneal_every``.
        amp: Mixed precision (float16 on CUDA, bfloat16 on CPU).
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 5.0
    seed: int = 0
    patience: int = 0
    average: float = 0.0
    optimizer: str = "adam"
    anneal_every: int = 0
    anneal_factor: float = 0.5
    amp: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("patience", "anneal_every", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not self.clip >= 0:
            raise ValueError(f"clip must be >= 0 (0: no clipping), got {self.clip!r}")
        if not 0 <= self.average < 1:
            raise ValueError(f"average must lie in [0, 1), got {self.average!r}")
        if not 0 < self.anneal_factor <= 1:
            raise ValueError(f"anneal_factor must lie in (0, 1], got {self.anneal_factor!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {self.optimizer!r}"
            )


@dataclass
class History:
    """What each epoch of a training run did.

    Attributes:
        columns: Per epoch, by name: ``loss`` (the training loss per unit of the task's
            loss: token, frame, sentence, question), ``lr``, ``seconds``, each development
            metric of `Task.evaluate` and each note of `Task.begin_epoch`.
        best_epoch: The 1-based epoch whose weights were kept (the last one without
            development data).
        changes: One ``{"after_epoch": n, "changed": {setting: [before, after]}}`` per
            resume with changed settings (more epochs).
    """

    columns: dict[str, list] = field(default_factory=dict)
    best_epoch: int | None = None
    changes: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns.get("loss", []))

    def __getitem__(self, name: str) -> list:
        return self.columns[name]

    def __getattr__(self, name: str) -> list:
        """A column by attribute (``history.loss``)."""
        columns = self.__dict__.get("columns", {})
        if name in columns:
            return columns[name]
        raise AttributeError(f"the history has no column {name!r}: it has {sorted(columns)}")

    def append(self, row: dict[str, Any]) -> None:
        """Add one epoch's values (every epoch gives the same names)."""
        before = len(self)
        for name, value in row.items():
            self.columns.setdefault(name, [math.nan] * before).append(value)

    def to_dict(self) -> dict:
        """Plain data: the columns, ``best_epoch`` and ``changes`` side by side."""
        return {**self.columns, "best_epoch": self.best_epoch, "changes": self.changes}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """Read back `to_dict`."""
        columns = {k: list(v) for k, v in data.items() if k not in ("best_epoch", "changes")}
        return cls(columns, data.get("best_epoch"), list(data.get("changes", [])))


class Task:
    """A domain's part of training: what is trained, on what, and how well it does.

    Subclasses set ``kind`` (the kind of their checkpoints, `hybrid.saved.stamp`), and
    hold ``model`` and ``config``; they implement `plan`, `loss`, `evaluate` and `score`,
    and may change the hooks below.

    Attributes:
        reduction: ``"mean"``: a step minimises the sum of the batch's `loss` totals over
            the sum of their units (the mean per token, frame, sentence); ``"sum"``: the
            sum of the totals.
    """

    kind: str
    model: nn.Module
    config: TrainConfig
    reduction: str = "mean"

    def settings(self) -> dict:
        """What the checkpoint records and a resume must match, besides ``config``: the
        model's settings (``{"model": asdict(model.config)}``), and whatever else fixes the
        run (the data, how labels are numbered) under ``"run"``."""
        return {"model": asdict(self.model.config)}

    def plan(self, generator: torch.Generator) -> list[list[int]]:
        """The batches of one epoch, in order, as lists of training item indices; draw
        any shuffling from ``generator`` (the same on every process)."""
        raise NotImplementedError

    def loss(self, batch: Sequence[int], generator: torch.Generator) -> tuple[Tensor, float]:
        """``(total, units)`` of the items ``batch``: the summed loss (differentiable) and
        how many units (tokens, frames, sentences) it sums over. Draws during a step (data
        augmentation) come from ``generator`` (one per process)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> dict[str, float] | None:
        """Development metrics of ``model`` (this task's model, or its weight average), or
        ``None`` without development data (the last epoch is kept)."""
        raise NotImplementedError

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        """The development score of ``metrics``, higher is better (compared as a tuple: the
        later entries break ties); an epoch must beat the best so far to be kept."""
        raise NotImplementedError

    def epochs(self) -> int:
        """How many epochs the run has."""
        return self.config.epochs

    def begin_epoch(self, epoch: int) -> dict[str, Any]:
        """Called before 0-based ``epoch`` trains; returns notes on it for the history."""
        return {}

    def selects(self, epoch: int) -> bool:
        """Whether 0-based ``epoch`` may be kept as the best (and counts for patience)."""
        return True

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch``: ``lr``, times ``anneal_factor`` every
        ``anneal_every`` epochs."""
        config = self.config
        decays = epoch // config.anneal_every if config.anneal_every else 0
        return config.lr * config.anneal_factor**decays

    def describe(self) -> str:
        """A short name for progress bars and log lines."""
        return self.kind.removesuffix(" checkpoint")


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a `torch.device` a model can train on: the CPU, or a visible CUDA device
    (``"cuda"`` under ``torchrun``: the GPU of this process's ``LOCAL_RANK``).

    Raises:
        ValueError: naming ``device``: not a device name (``"gpu"``), a device with no data
            (``"meta"``) or of another kind, or a CUDA device that is not visible.
    """
    expected = "device: expected a torch device that can train a model, 'cpu', 'cuda' or 'cuda:N'"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{expected}, got {device!r}") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"{expected}, got {str(resolved)!r}")
    if resolved.type == "cuda":
        if resolved.index is None and distributed.world()[1] > 1:  # one GPU per process
            resolved = torch.device("cuda", distributed.local_rank())
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if visible == 0:
            raise ValueError(f"device {str(resolved)!r} asked for, but no CUDA device is visible")
        if resolved.index is not None and resolved.index >= visible:
            raise ValueError(
                f"device {str(resolved)!r} asked for, but only {visible} CUDA device(s) are "
                f"visible (cuda:0 to cuda:{visible - 1})"
            )
    return resolved


def _log_to_file(log: Callable[[str], None], path: Path | None) -> Callable[[str], None]:
    """``log`` that also appends each line to ``path``."""
    if path is None:
        return log

    def both(line: str) -> None:
        log(line)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(line + "\n")

    return both


def _clone(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _half(device: torch.device) -> torch.dtype:
    """The precision of mixed-precision steps on ``device``: float16 on CUDA (with a
    gradient scaler), bfloat16 on the CPU."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _comparable(score: Sequence[float]) -> list[float]:
    """``score`` as a list in which NaN (no score) ranks below every number."""
    return [-math.inf if math.isnan(s) else float(s) for s in score]


def _metrics_line(metrics: dict[str, float]) -> str:
    """The numeric metrics of an epoch, for its log line (NaN, no such score, left out)."""
    return "".join(
        f" {k} {v:.4g}"
        for k, v in metrics.items()
        if isinstance(v, int | float) and not math.isnan(v)
    )


#: What every checkpoint of this engine holds besides the weights and settings.
_STATE_KEYS = {"optimizer", "scaler", "order", "ranks", "history", "epoch", "partial"}


class _Run:
    """The state of one training run: everything a checkpoint holds."""

    def __init__(self, task: Task, device: torch.device) -> None:
        config, (rank, size) = task.config, distributed.world()
        self.task, self.device, self.size = task, device, size
        seed_everything(config.seed if rank == 0 else derived_seed(config.seed, rank))
        self.order = torch.Generator().manual_seed(config.seed)
        self.draws = torch.Generator().manual_seed(derived_seed(config.seed, 1, rank))
        model = task.model
        self.optimizer = _OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr)
        self.averaged = None
        if config.average:
            self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.average))
        self.amp = config.amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
        self.history = History()
        self.best_score: list | None = None
        self.best_model: dict | None = None
        self.stale = 0
        self.epoch = 0  # epochs done
        self.partial: dict | None = None  # the epoch under way at a mid-epoch checkpoint

    @property
    def kept(self) -> nn.Module:
        """The weights scored and kept: the model's, or their average."""
        return self.task.model if self.averaged is None else self.averaged.module

    def state(self, settings: dict) -> dict:
        ranks = distributed.all_gather({"random": random_states(), "draws": self.draws.get_state()})
        return {
            **stamp(self.task.kind),
            "settings": settings,
            "processes": self.size,
            "model": self.task.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            **({"averaged": self.averaged.state_dict()} if self.averaged is not None else {}),
            "order": self.order.get_state(),
            "ranks": ranks,
            "history": self.history.to_dict(),
            "best_score": self.best_score,
            "best_model": self.best_model,
            "stale": self.stale,
            "epoch": self.epoch,
            "partial": self.partial,
        }

    def restore(self, path: Path, saved: dict, changes: dict, log: Callable[[str], None]) -> None:
        missing = sorted(_STATE_KEYS - saved.keys())
        if missing:
            raise ValueError(
                f"{path} is a checkpoint of an older version of hybrid (it lacks {missing}); "
                "delete it to restart that training run from its beginning"
            )
        if saved.get("processes", 1) != self.size:
            raise ValueError(
                f"{path} was written by a run of {saved.get('processes', 1)} processes; "
                f"resume it with as many (this run has {self.size})"
            )
        self.task.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if saved["scaler"] and self.scaler.is_enabled():  # float16 on CUDA had one
            self.scaler.load_state_dict(saved["scaler"])
        if self.averaged is not None:
            self.averaged.load_state_dict(saved["averaged"])
        self.order.set_state(saved["order"])
        mine = saved["ranks"][distributed.world()[0]]
        restore_random_states(mine["random"])
        self.draws.set_state(mine["draws"])
        self.history = History.from_dict(saved["history"])
        self.best_score, self.best_model = saved["best_score"], saved["best_model"]
        self.stale, self.epoch, self.partial = saved["stale"], saved["epoch"], saved["partial"]
        if changes:
            self.history.changes.append({"after_epoch": self.epoch, "changed": changes})
        within = f", step {self.partial['step']}" if self.partial else ""
        log(f"resumed from {path} after epoch {self.epoch}{within}")


def train(
    task: Task,
    checkpoint: str | Path | None = None,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
    save_every: int = 0,
) -> History:
    """Train ``task.model`` and leave it holding the weights of its best development epoch.

    Batches go to the device of the model's parameters (move the model first to train on a
    GPU). Under ``torchrun`` (`hybrid.training.distributed.init_from_environment` first)
    each process takes every ``world``-th item of each batch; only the first process logs
    and writes.

    Args:
        task: What is trained (`Task`), with its settings ``task.config``.
        checkpoint: Where the resumable state is kept, or ``None``. When it exists the run
            resumes from it, provided it was made with the same settings
            (`hybrid.saved.load_checkpoint`: only ``epochs`` may be raised, recorded in
            `History.changes`). Epoch lines are also appended to the file beside it with
            the suffix ``.log``.
        progress: Show a progress bar over each epoch's steps.
        log: Where one line per epoch (and the resume) goes.
        save_every: Also checkpoint every this many steps within an epoch (0: after each
            epoch only).

    Returns:
        The `History` of the run, epochs before a resume included.

    Raises:
        ValueError: naming ``checkpoint``, when it is not a checkpoint of ``task.kind``
            (truncated, or another file), was made with other settings, or by another
            number of processes.
    """
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 0:
        raise ValueError(f"save_every must be a non-negative integer, got {save_every!r}")
    checkpoint = None if checkpoint is None else Path(checkpoint)
    model, config = task.model, task.config
    device = next(model.parameters()).device
    settings = {**task.settings(), "training": asdict(config)}
    if config.amp:  # float16 on CUDA, bfloat16 on CPU: a resume must keep the same
        settings["precision"] = str(_half(device)).removeprefix("torch.")
    main = distributed.is_main()
    log = _log_to_file(log, checkpoint.with_suffix(".log") if checkpoint and main else None)
    if not main:
        log = lambda line: None  # noqa: E731
    run = _Run(task, device)
    if checkpoint is not None and checkpoint.exists():
        saved, changes = load_checkpoint(checkpoint, task.kind, settings, model)
        run.restore(checkpoint, saved, changes, log)
    distributed.broadcast_parameters(model)

    def save() -> None:
        state = run.state(settings)  # every process takes part in gathering the states
        if checkpoint is not None and main:
            save_atomic(state, checkpoint)

    name = task.describe()
    while run.epoch < task.epochs() and not (config.patience and run.stale >= config.patience):
        _train_epoch(run, name, progress, save if checkpoint and save_every else None, save_every)
        metrics = task.evaluate(run.kept)
        epoch = run.epoch
        if metrics is None or task.selects(epoch):
            score = None if metrics is None else _comparable(task.score(metrics))
            if metrics is None or run.best_score is None or score > run.best_score:
                run.best_score, run.best_model, run.stale = score, _clone(run.kept), 0
                run.history.best_epoch = epoch + 1
            else:
                run.stale += 1
        row = run.partial
        run.history.append(
            {
                **row["notes"],
                "loss": row["total"] / max(row["units"], 1e-300),
                "lr": task.learning_rate(epoch),
                "seconds": row["seconds"],
                **(metrics or {}),
            }
        )
        run.epoch, run.partial = epoch + 1, None
        distributed.check_in_sync(model)
        log(
            f"{name} epoch {run.epoch}: loss {run.history['loss'][-1]:.4f}"
            f"{_metrics_line(metrics or {})} ({row['seconds']:.1f} s)"
        )
        if checkpoint is not None:
            save()
    distributed.barrier()  # the last checkpoint is written before any process reads it
    model.load_state_dict(run.best_model if run.best_model is not None else _clone(run.kept))
    model.eval()
    return run.history


def _train_epoch(
    run: _Run,
    name: str,
    progress: bool,
    save: Callable[[], None] | None,
    save_every: int,
) -> None:
    """Train the steps of epoch ``run.epoch`` that ``run.partial`` has not done yet."""
    task, model, config = run.task, run.task.model, run.task.config
    rank, size = distributed.world()
    if run.partial is None:
        notes = task.begin_epoch(run.epoch)
        plan = task.plan(run.order)
        run.partial = {
            "plan": plan,
            "step": 0,
            "total": 0.0,
            "units": 0.0,
            "seconds": 0.0,
            "notes": notes,
        }
    else:
        task.begin_epoch(run.epoch)
    partial = run.partial
    for group in run.optimizer.param_groups:
        group["lr"] = task.learning_rate(run.epoch)
    model.train()
    plan = partial["plan"]
    bar = tqdm(
        total=len(plan),
        initial=partial["step"],
        desc=f"{name} epoch {run.epoch + 1}",
        unit="batch",
        disable=not progress or not distributed.is_main(),
        leave=False,
    )
    begin = time.perf_counter() - partial["seconds"]
    autocast = torch.autocast(run.device.type, dtype=_half(run.device), enabled=run.amp)
    while partial["step"] < len(plan):
        mine = plan[partial["step"]][rank::size]
        run.optimizer.zero_grad()
        if mine:
            with autocast:
                total, units = task.loss(mine, run.draws)
        else:  # more processes than items: this one adds nothing to the step
            total, units = torch.zeros((), device=run.device, requires_grad=True), 0.0
        sum_total, sum_units = distributed.sum_values(
            float(total.detach()), units, device=run.device
        )
        objective = total / (sum_units or 1.0) if task.reduction == "mean" else total
        run.scaler.scale(objective).backward()
        distributed.sum_gradients(model)
        if config.clip:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if run.averaged is not None:
            run.averaged.update_parameters(model)
        partial["step"] += 1
        partial["total"] += sum_total
        partial["units"] += sum_units
        partial["seconds"] = time.perf_counter() - begin
        bar.update()
        bar.set_postfix(loss=f"{partial['total'] / max(partial['units'], 1e-300):.3f}")
        if save is not None and partial["step"] % save_every == 0 and partial["step"] < len(plan):
            save()
    bar.close()
