"""Data-parallel training with two processes over gloo: the helpers and a torchrun run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from hybrid.training import distributed

ROOT = Path(__file__).resolve().parents[1]


def _worker(rank: int, size: int, port: int, errors) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=size)
    try:
        torch.manual_seed(rank)  # different initial weights on purpose
        model = nn.Linear(3, 2)
        distributed.broadcast_parameters(model)
        torch.manual_seed(0)
        reference = nn.Linear(3, 2)
        assert torch.equal(model.weight, reference.weight)  # rank 0's weights everywhere
        distributed.check_in_sync(model)
        model.weight.grad = torch.full_like(model.weight, float(rank))
        model.bias.grad = None  # an unused parameter counts as a zero gradient
        distributed.sum_gradients(model)
        assert torch.equal(model.weight.grad, torch.full_like(model.weight, 1.0))  # 0 + 1
        assert torch.equal(model.bias.grad, torch.zeros_like(model.bias))
        assert distributed.sum_values(rank, 2.5) == [1.0, 5.0]
        assert distributed.all_gather({"rank": rank}) == [{"rank": 0}, {"rank": 1}]
        with torch.no_grad():
            model.weight[0, 0] += rank
        with pytest.raises(RuntimeError, match="different models"):
            distributed.check_in_sync(model)
    except Exception as error:  # reported to the parent, which fails the test
        errors.put(f"rank {rank}: {error!r}")
    finally:
        dist.destroy_process_group()


def test_helpers_with_two_processes():
    errors = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_worker, args=(2, 29517, errors), nprocs=2, join=True)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found


def test_torchrun_trains_a_tagger_with_two_processes(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29518",
        str(ROOT / "recipes" / "tagging.py"),
        "--limit",
        "40",
        "--epochs",
        "2",
        "--seeds",
        "0",
        "--heads",
        "crf",
        "--hidden",
        "8",
        "--word-dim",
        "8",
        "--quiet",
        "--runs",
        str(tmp_path),
    ]
    environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=environment, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "synthetic" / "results.json").read_text())
    assert [run["processes"] for run in results["runs"]] == [2]
    assert (tmp_path / "synthetic" / "models" / "crf-seed0.pt").exists()
