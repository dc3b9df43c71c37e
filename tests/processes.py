"""Real processes for the tests: a command run to its end, or killed with SIGKILL once it
has written a checkpoint (within its first epoch, say), to be run again and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

#: One thread per process, the checkout on the path: a process sees this checkout's package.
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def start(arguments: list[str], environment: dict | None = None) -> subprocess.Popen:
    """``python <arguments>`` (e.g. ``["-m", "hybrid.cli", "train-tagger", ...]``) in the
    checkout, its output discarded but for its standard error."""
    return subprocess.Popen(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=environment or ENVIRONMENT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> None:
    """Wait for ``process``; fail with the end of its standard error unless it succeeded."""
    assert process.wait(timeout=timeout) == 0, process.stderr.read().decode()[-3000:]


def kill_within_first_epoch(
    process: subprocess.Popen, checkpoint: Path, timeout: float = 300
) -> dict:
    """SIGKILL ``process`` a few steps after its ``checkpoint`` first appears (the command
    checkpoints every step), and return that checkpoint, which must be one of the first
    epoch's steps (`hybrid.training.train`'s ``partial`` state)."""
    saved = kill_after(process, checkpoint, timeout)
    assert saved["partial"] is not None and saved["epoch"] == 0  # it died within epoch 1
    return saved


def kill_after(process: subprocess.Popen, checkpoint: Path, timeout: float = 300) -> dict:
    """SIGKILL ``process`` shortly after its ``checkpoint`` first appears, and return that
    checkpoint as the killed process left it."""
    deadline = time.monotonic() + timeout
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    assert process.poll() is None, process.stderr.read().decode()[-3000:]
    time.sleep(0.05)  # some steps further
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return torch.load(checkpoint, weights_only=True)


def assert_same(found, expected, where: str = "") -> None:
    """``found`` equals ``expected``: tensors exactly, through nested dicts, lists and
    tuples."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(found, expected), where
    elif isinstance(expected, dict):
        assert found.keys() == expected.keys(), where
        for key in expected:
            assert_same(found[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, list | tuple):
        assert len(found) == len(expected), where
        for index, (a, b) in enumerate(zip(found, expected, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    else:
        assert found == expected, where
