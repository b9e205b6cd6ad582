"""Data-parallel training across the tasks of one job (DDP), and the helpers methods call.

A SLURM job with ``tasks_per_node = GPUs`` runs one process per GPU; each
calls :func:`init_from_slurm` (submitit's TorchDistributedEnvironment gives
rank, world size and a master address), trains on its shard of every global
batch (:class:`ShardedBatches`) and averages gradients through torch's
DistributedDataParallel. NCCL on GPUs, gloo on CPU (the tests: 2 processes).

Methods whose negatives come from the batch or a memory bank gather them
across ranks with :func:`all_gather_cat`, which returns its input unchanged
when there is no process group, so method code reads the same either way::

    from benchmark.distributed import all_gather_cat
    index, z = all_gather_cat(index), all_gather_cat(z)   # every rank sees the global batch

Rank 0 alone writes the run directory (config, scalars, checkpoints, metrics).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def info() -> DistInfo:
    """This process's place in the current process group (rank 0 of 1 when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return DistInfo()


def is_main() -> bool:
    return info().is_main


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def init(
    rank: int,
    world_size: int,
    backend: str | None = None,
    master_addr: str = "127.0.0.1",
    master_port: int | None = None,
    local_rank: int | None = None,
    timeout_s: float = 1800,
) -> DistInfo:
    """Join a process group through env:// (MASTER_ADDR/PORT set here unless already in the environment)."""
    os.environ.setdefault("MASTER_ADDR", master_addr)
    if master_port is not None:
        os.environ["MASTER_PORT"] = str(master_port)
    os.environ.setdefault("MASTER_PORT", "29511")
    os.environ["LOCAL_RANK"] = str(rank if local_rank is None else local_rank)
    backend = backend or default_backend()
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=timeout_s))
    return info()


def init_from_slurm(backend: str | None = None) -> DistInfo:
    """Inside a multi-task SLURM job: set up torch.distributed from submitit's view of the job."""
    from submitit.helpers import TorchDistributedEnvironment

    # CUDA_VISIBLE_DEVICES is left alone: SLURM already restricts it to the job's GPUs, and
    # narrowing it to the local rank would pick the wrong physical GPU on a shared node.
    env = TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    if env.world_size <= 1:
        return DistInfo()
    return init(env.rank, env.world_size, backend, env.master_addr, env.master_port, env.local_rank)


def slurm_world_size() -> int:
    """Tasks in this SLURM job (1 outside SLURM)."""
    return int(os.environ.get("SLURM_NTASKS", "1") or 1)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: str) -> str:
    """run.device for this rank: each rank of a multi-GPU job takes the GPU of its local rank."""
    d = info()
    if d.enabled and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{d.local_rank}"
    return device


# --------------------------------------------------------------------------- collectives
def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (dim 0) from every rank, in rank order; unchanged without a process group.

    Not differentiable: meant for memory-bank updates and negatives that carry no gradient.
    Every rank must pass the same shape.
    """
    d = info()
    if not d.enabled:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(d.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def all_reduce_mean(values: list[float]) -> list[float]:
    """Average a few floats over ranks (one collective)."""
    d = info()
    if not d.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return [float(v) / d.world_size for v in t.cpu()]


def any_rank(*flags: bool) -> list[bool]:
    """Per flag: is it set on any rank? (So that every rank stops or checkpoints at the same step.)"""
    d = info()
    if not d.enabled:
        return [bool(f) for f in flags]
    t = torch.tensor([float(f) for f in flags])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v > 0) for v in t.cpu()]


def barrier() -> None:
    if info().enabled:
        dist.barrier()


# --------------------------------------------------------------------------- data + model
class ShardedBatches(torch.utils.data.Sampler):
    """A rank's share of every global batch of a StepBatches: slots rank, rank+W, rank+2W, ...

    The global batch of step s is the same whatever the world size (it is a pure
    function of (seed, s)), so 2 ranks see together exactly what 1 process sees.
    """

    def __init__(self, batches: Any, rank: int, world_size: int):
        if batches.batch % world_size:
            raise ValueError(f"optim.batch_size={batches.batch} is not divisible by the {world_size} ranks")
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __iter__(self) -> Iterator[list]:
        for addresses in self.batches:
            yield addresses[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self.batches)

    def epoch_of(self, step: int) -> int:
        return self.batches.epoch_of(step)


def shard(batches: Any) -> Any:
    d = info()
    return ShardedBatches(batches, d.rank, d.world_size) if d.enabled else batches


class _Stepper(nn.Module):
    """Routes training_step through forward(), so that DDP's hooks see it and average the gradients."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch: dict, progress: Any):
        out = self.method.training_step(batch, progress)
        return getattr(out, "loss", None), out  # not a StepOutput: the trainer says so in one line


def training_step_fn(method: nn.Module):
    """``fn(batch, progress) -> StepOutput``: the method's own step, DDP-wrapped when distributed."""
    d = info()
    if not d.enabled:
        return method.training_step
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [method_device(method).index] if method_device(method).type == "cuda" else None
    # find_unused_parameters: a method may leave a head unused on some steps; correctness over a few %.
    ddp = DistributedDataParallel(_Stepper(method), device_ids=device_ids, find_unused_parameters=True)

    def step(batch: dict, progress: Any):
        _, out = ddp(batch, progress)
        return out

    return step


def method_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")
