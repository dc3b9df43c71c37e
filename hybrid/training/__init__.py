"""Training shared by every domain: one loop (`train` over a domain's `Task`), seeding and
random states, data parallelism under ``torchrun``."""

from .engine import History, Task, TrainConfig, train

__all__ = ["History", "Task", "TrainConfig", "train"]
