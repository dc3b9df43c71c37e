"""Data-parallel training over several processes (``torchrun``), CPU (gloo) or GPU (nccl).

Every process runs the same code on the same batch order; each batch is split between the
processes, each computes the loss of its share, and the gradients are summed with one
all-reduce per step, so every process holds the same model. With a single process everything
here is a no-op.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "all_gather",
    "barrier",
    "broadcast_parameters",
    "check_in_sync",
    "init_from_environment",
    "is_main",
    "local_rank",
    "sum_gradients",
    "sum_values",
    "world",
]


def init_from_environment(device: str | torch.device = "cpu") -> None:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1), once: NCCL
    when the run trains on CUDA (each process on the GPU of its ``LOCAL_RANK``), gloo on
    the CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(local_rank())
        dist.init_process_group("nccl" if cuda else "gloo")


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK`` of ``torchrun``; 0 without)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world() -> tuple[int, int]:
    """``(rank, size)`` of this process; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files (rank 0)."""
    return world()[0] == 0


def barrier() -> None:
    """Wait for every process (no-op with one)."""
    if world()[1] > 1:
        dist.barrier()


def broadcast_parameters(model: nn.Module) -> None:
    """Give every process the first process's parameters and buffers."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor, src=0)


def sum_gradients(model: nn.Module) -> None:
    """Sum the gradients of ``model`` over all processes (one flat all-reduce); a parameter
    without a gradient counts as zeros."""
    if world()[1] == 1:
        return
    parameters = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(parameters, grads, strict=True):
        p.grad = flat[offset : offset + g.numel()].view_as(g).clone()
        offset += g.numel()


def sum_values(*values: float, device: torch.device | str = "cpu") -> list[float]:
    """The sums of ``values`` over all processes (float64; one all-reduce)."""
    if world()[1] == 1:
        return [float(v) for v in values]
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def all_gather(value: Any) -> list[Any]:
    """Every process's ``value`` (picklable), in rank order."""
    size = world()[1]
    if size == 1:
        return [value]
    gathered: list[Any] = [None] * size
    dist.all_gather_object(gathered, value)
    return gathered


def check_in_sync(model: nn.Module) -> None:
    """Raise if the processes' copies of ``model`` have drifted apart."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        total = torch.stack([p.double().sum() for p in model.parameters()]).sum().reshape(1)
        low, high = total.clone(), total.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if not torch.equal(low, high):
        raise RuntimeError(
            f"processes hold different models (checksums {low.item()} .. {high.item()})"
        )
