"""Data-parallel training across processes: ``torchrun --nproc_per_node N your_script.py`` with
``fit(..., distributed=True)``.

Each process (rank) takes ``batch_size / N`` of every domain's batch: all ranks draw the same
global order from the run's seeded generator and rank ``r`` keeps rows ``r, r + N, ...`` of each
global batch, so together they see exactly the batches of a one-process run. After every backward
pass the gradients of all parameters -- backbone, classifier, discriminator and any other module a
method declares -- are averaged across ranks (one all-reduce of one flat buffer), so every rank
takes the same optimizer step. This is what ``DistributedDataParallel`` computes; it is done in the
engine's :class:`~adapt.train.engine.Stepper` instead of by wrapping a module because methods run
several forward passes per step (source, target, perturbed inputs) and several optimizer stages per
batch (MCD, SymNets, ADDA), which a DDP wrapper does not follow. Communication is not overlapped
with the backward pass, the one thing DDP's bucketing adds.

Equal to a one-process run with the same global batch for losses that are means over examples
(cross-entropy, the discriminator's loss, entropy), up to float summation order; terms computed on a
whole batch (MMD, CORAL, MCC, BNM, BatchNorm statistics) see the rank's share of it, as under DDP.
State a method keeps outside its parameters (the memory banks of ATDOC and NRC, keyed by target
position) is updated by each rank from its own rows only. ``sync_batch_norm=True`` converts BatchNorm
layers to :class:`torch.nn.SyncBatchNorm` (CUDA only, a PyTorch restriction). Rank 0 writes
checkpoints, runs callbacks (validators) and shows progress; logged losses are averaged over ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import distributed as dist
from torch import nn

from ..errors import InputError


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` processes."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, global_rows: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch's rows (every ``world``-th, from ``rank``)."""
        return global_rows[self.rank :: self.world]

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        return tensor.div_(self.world)

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (identical starting points)."""
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def join(device: torch.device) -> tuple[Shard, torch.device]:
    """Join (or start) the process group torchrun describes; this rank's shard and device."""
    if not dist.is_available():
        raise InputError("distributed=True, but this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise InputError(
                f"distributed=True needs a process group: start the script with torchrun "
                f"(missing environment variables: {', '.join(missing)}) or call torch.distributed.init_process_group"
            )
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    shard = Shard(dist.get_rank(), dist.get_world_size())
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", shard.rank % torch.cuda.device_count()))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return shard, device


def check_batch_size(shard: Shard, batch_size: int) -> None:
    if batch_size % shard.world:
        raise InputError(
            f"batch_size={batch_size} cannot be split across {shard.world} processes; "
            f"use a multiple of {shard.world} (it is the global batch per domain)"
        )


def sync_batch_norm(model: nn.Module, device: torch.device) -> None:
    """Turn the BatchNorm layers of ``model``'s modules into SyncBatchNorm (CUDA only)."""
    if device.type != "cuda":
        raise InputError("sync_batch_norm=True needs CUDA devices (PyTorch's SyncBatchNorm runs on GPUs only)")
    for name, child in list(model.named_children()):
        setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
