"""Distributed set-up in a few explicit lines (nanoGPT style): torchrun env -> process group, DDP / FSDP2."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank, world size, and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(threads: int = 0) -> Dist:
    """Join the process group torchrun describes in the environment (nccl on CUDA, gloo on CPU), if any;
    threads > 0 first sets this process's CPU threads (a run's loop.threads)."""
    if threads:
        torch.set_num_threads(threads)
    cuda = torch.cuda.is_available()
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Dist(device=torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, device)


def cleanup() -> None:
    """Leave the process group (no-op in a single-process run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, parallel: str, ctx: Dist, find_unused_parameters: bool = False) -> nn.Module:
    """DDP (gradients all-reduced) or FSDP2 (`fully_shard` every block in a ModuleList, then the root).

    find_unused_parameters: some micro-batches leave parameters out of the graph (an all-image micro-batch
    skips the temporal layers), so DDP must look for them instead of waiting for their gradients."""
    if ctx.world_size == 1:
        return model
    if parallel == "ddp":
        device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(
            model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
        )
    from torch.distributed.fsdp import fully_shard

    for module in list(model.modules()):
        if isinstance(module, nn.ModuleList):
            for block in module:
                if any(p.requires_grad for p in block.parameters()):
                    fully_shard(block)
    fully_shard(model)
    return model


@contextlib.contextmanager
def no_sync(model: nn.Module, skip: bool):
    """Skip the gradient all-reduce / reduce-scatter on non-final gradient-accumulation micro-steps."""
    if not skip:
        yield
    elif isinstance(model, DistributedDataParallel):
        with model.no_sync():
            yield
    elif hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    else:
        yield


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over all processes (itself in a single-process run)."""
    if not dist.is_initialized():
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def all_gather_objects(obj: object) -> list:
    """Every process's `obj`, in rank order ([obj] in a single-process run)."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: object) -> object:
    """Rank 0's `obj` on every process."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every process (no-op in a single-process run)."""
    if dist.is_initialized():
        dist.barrier()
