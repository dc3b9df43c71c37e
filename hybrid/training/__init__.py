"""Training shared by every domain: one loop (`train` over a domain's `Task`), seeding and
random states, data parallelism under ``torchrun``."""

from .engine import History, Task, TrainConfig, resolve_device, train

__all__ = ["History", "Task", "TrainConfig", "resolve_device", "train"]
