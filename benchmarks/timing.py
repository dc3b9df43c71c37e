"""Wall-clock timing shared by the benchmark scripts (medians after a warm-up call)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_ms(
    fn: Callable[[], object], device: str, budget_s: float, min_reps: int = 3, max_reps: int = 200
) -> float:
    """Median wall time of ``fn`` in ms, after one warm-up call, within a time budget."""
    fn()
    sync(device)
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < max_reps and (
        len(times) < min_reps or time.perf_counter() - begin < budget_s
    ):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)
