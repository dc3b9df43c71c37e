"""Seeding, and the random states of Python, NumPy and torch (CPU and CUDA) as plain data.

A training checkpoint holds every random state a step may draw from, so that a resumed run
draws what the uninterrupted run would have drawn. The states are stored as tensors and
lists, which ``torch.load(weights_only=True)`` reads back.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["derived_seed", "random_states", "restore_random_states", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator others draw from)
    torch.manual_seed(seed)  # also seeds every CUDA device


def derived_seed(*parts: int) -> int:
    """A 63-bit seed drawn from ``parts`` (e.g. a run's seed, a stream number and a process
    rank): independent streams for different parts, the same for the same parts."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def random_states() -> dict:
    """The current states of Python's, NumPy's and torch's global generators (CPU, and each
    CUDA device when CUDA is initialised), as plain data."""
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": cuda,
    }


def restore_random_states(states: dict) -> None:
    """Set the global generators to ``states`` (as `random_states` returned them). CUDA
    states are restored when both the states and CUDA devices are there."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    keys = keys.numpy().astype(np.uint32)
    np.random.set_state((kind, keys, position, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
