"""One training run over several devices of one host: one process per device, G and D wrapped in
DistributedDataParallel (NCCL between CUDA devices, gloo between CPU processes).

A `Shard` is one process's place in such a run. The global batch is drawn whole on every rank, from
the run's one RNG stream (every rank holds the same stream state), and rank r keeps rows
[r·B/n, (r+1)·B/n) of it: which samples, latents and augmentation parameters a rank gets is a pure
function of (seed, step, rank, world size), so a resumed run draws exactly what an unbroken one would.
The global batch is the one a single device would draw, and a checkpoint has the same form whatever
the device count.

Batch norm keeps per-device statistics (plain BatchNorm, not SyncBatchNorm): SyncBatchNorm runs on CUDA
only, so gloo on CPU could not run the same networks, and it adds a collective to every BatchNorm layer
of every forward, which dominates the step of a small DCGAN. Per-device statistics are what a run with
batch B/n would use, so a 2-device run is close to, not bit-identical with, a 1-device run of batch B
(docs/multi-device.md gives the tolerance that tests/unit/test_distributed.py checks).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

# Rank 0 alone samples, checkpoints and evaluates between steps (an evaluation can take minutes on a
# GPU); the other ranks wait for it in their next collective, for at most this long.
COLLECTIVE_TIMEOUT = timedelta(minutes=30)
RENDEZVOUS_TIMEOUT = timedelta(minutes=5)  # for every rank to start and join


@dataclass(frozen=True)
class Shard:
    """This process's place in a run: rank `rank` of `world_size`, training on `device`."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def rows(self, global_rows: int) -> slice:
        """This rank's rows of a global batch (whose size `world_size` divides)."""
        per_rank = global_rows // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` as trained: in DistributedDataParallel when distributed, else itself. DDP averages the
        gradients, and copies rank 0's buffers (BatchNorm's running statistics, spectral norm's vectors)
        to every rank before each forward pass."""
        if not self.distributed:
            return module
        device_ids = [self.device] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` (on this rank's device) summed over all ranks, in place."""
        if self.distributed:
            dist.all_reduce(values)
        return values

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """`values` averaged over all ranks."""
        return self.sum(values) / self.world_size if self.distributed else values

    def agree(self, flag: bool) -> bool:
        """Rank 0's `flag` on every rank (a stop request that rank 0 alone can see)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def share(self, payload: bytes) -> bytes:
        """Rank 0's `payload` on every rank (the other ranks pass b"")."""
        if not self.distributed:
            return payload
        box = [payload]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]


def share_state(state: dict | None, shard: Shard) -> dict | None:
    """Rank 0's `state` (a resumed checkpoint, or None for a fresh run) on every rank, loaded onto this
    rank's device; the other ranks pass None."""
    if not shard.distributed:
        return state
    buffer = io.BytesIO()
    if shard.rank == 0 and state is not None:
        torch.save(state, buffer)
    payload = shard.share(buffer.getvalue())
    return torch.load(io.BytesIO(payload), map_location=shard.device, weights_only=True) if payload else None


def rendezvous(world_size: int, port: int = 0) -> dist.TCPStore:
    """The meeting point of a run's ranks on this host. Rank 0 opens it (`port` 0: a free port, then
    `store.port`); the other ranks connect to rank 0's port."""
    return dist.TCPStore(
        "127.0.0.1",
        port,
        world_size,
        is_master=port == 0,
        timeout=RENDEZVOUS_TIMEOUT,
        wait_for_workers=False,
    )


def join_group(store: dist.Store, rank: int, world_size: int, device: torch.device) -> Shard:
    """Join the run's process group as `rank` (this blocks until every rank has joined): NCCL between
    CUDA devices, gloo otherwise."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend, store=store, rank=rank, world_size=world_size, timeout=COLLECTIVE_TIMEOUT
    )
    return Shard(rank, world_size, device)


def leave_group() -> None:
    """Leave the run's process group, if in one (a worker process trains many runs, one at a time)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, rank: int) -> torch.device:
    """The device of `rank`: CUDA device `rank`; on a CPU every rank is a process on the CPU."""
    return torch.device("cuda", rank) if device.type == "cuda" else device
