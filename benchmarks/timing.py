"""Wall-clock timing shared by the benchmark scripts (medians after a warm-up call), and
writing a table with its rows."""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable
from pathlib import Path

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


def write_table(path: Path, table: str, rows: list[dict]) -> None:
    """``table`` (Markdown) at ``path`` and its ``rows`` beside it as CSV (``.csv``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table)
    with path.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
