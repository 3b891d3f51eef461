"""A training job over several devices of this host (`devices` in the spec; models.distributed).

Rank 0 is the job's own process, and ranks 1… are processes it spawns for the job. Rank 0 stays in the
job because it alone talks to Redis and storage (progress, cancel checks, webhooks, checkpoints,
samples, evaluations), which is then the same code as a one-device run's; the other ranks only train
(models.run.follow_training). They are spawned, never forked: CUDA cannot start in a fork of a process
that has used it. Rank r trains on CUDA device r; on a CPU every rank is a process with an equal share
of the worker's threads, and the ranks speak gloo.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import SimpleQueue
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

from models.distributed import Shard, join_group, leave_group, rank_device, rendezvous
from models.run import follow_training, share_resumed
from models.training import TrainConfig, Trainer
from workers.shared.datasets.packed import read_images

FOLLOWER_EXIT_SECONDS = 30  # after the run, for the other ranks to exit before they are terminated
PARENT_CHECK_SECONDS = 1.0  # how often a spawned rank checks that rank 0 is alive


class NotEnoughDevices(ValueError):
    """The spec asks for more devices than this worker's host has."""


class RankFailed(RuntimeError):
    """A rank other than 0 failed; its error is the message."""


@dataclass(frozen=True)
class TrainerPlan:
    """What any rank needs to build the run's trainer; sent to the spawned ranks."""

    config: dict[str, Any]  # TrainConfig.as_dict()
    dataset_dir: Path
    conditional: bool

    def build(self, shard: Shard) -> Trainer:
        images, labels = read_images(self.dataset_dir)
        config = TrainConfig.from_dict(self.config)
        return Trainer(config, images, labels if self.conditional else None, shard.device, shard)


def check_devices(device: torch.device, count: int) -> None:
    """NotEnoughDevices unless this host has `count` devices of `device`'s kind (any count on a CPU)."""
    if count == 1 or device.type == "cpu":
        return
    available = torch.cuda.device_count() if device.type == "cuda" else 1
    if available < count:
        raise NotEnoughDevices(
            f"devices is {count} but this worker's host has {available} {device.type} device(s)"
        )


def rank_threads(device: torch.device, count: int, worker_threads: int | None) -> int:
    """CPU threads of each rank: on a CPU the worker's threads (GANFORGE_TORCH_THREADS, else the cores)
    shared out, at least one each; on a GPU the worker's."""
    threads = worker_threads or os.cpu_count() or 1
    return max(1, threads // count) if device.type == "cpu" else threads


@contextmanager
def device_group(plan: TrainerPlan, device: torch.device, count: int, threads: int) -> Iterator[Shard]:
    """Rank 0's Shard of a run over `count` devices, with ranks 1… started and following; on leaving,
    the process group is closed and the other ranks are gone: after a run they exit by themselves, and
    when rank 0 fails they are terminated at once. One device: a plain Shard, nothing else. A failure of
    another rank surfaces as RankFailed."""
    if count == 1:
        yield Shard(device=device)
        return
    check_devices(device, count)
    context = mp.get_context("spawn")
    errors = context.SimpleQueue()
    store = rendezvous(count)
    followers = [
        context.Process(
            target=_follow,
            args=(plan, rank, count, store.port, device.type, threads, errors),
            name=f"ganforge-rank-{rank}",
            daemon=True,
        )
        for rank in range(1, count)
    ]
    for follower in followers:
        follower.start()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield join_group(store, 0, count, rank_device(device, 0))
    except Exception as error:
        failure = None if errors.empty() else errors.get()
        _end(followers, wait_seconds=0)  # they wait in a collective that rank 0 will never join
        if failure:
            raise RankFailed(failure) from error
        raise
    finally:
        leave_group()
        torch.set_num_threads(threads_before)
        _end(followers, FOLLOWER_EXIT_SECONDS)


def _end(followers: list[BaseProcess], wait_seconds: float) -> None:
    """Wait up to `wait_seconds` for the spawned ranks to exit, then terminate those still running."""
    for follower in followers:
        follower.join(wait_seconds)
        if follower.is_alive():
            follower.terminate()
            follower.join()


def _follow(
    plan: TrainerPlan, rank: int, count: int, port: int, device_type: str, threads: int, errors: SimpleQueue
) -> None:
    """A spawned rank: join, build the trainer, take rank 0's state, train until rank 0 stops."""
    _exit_with(os.getppid())
    torch.set_num_threads(threads)
    try:
        shard = join_group(rendezvous(count, port), rank, count, rank_device(torch.device(device_type), rank))
        trainer = plan.build(shard)
        share_resumed(trainer)
        follow_training(trainer, trainer.config.steps)
    except BaseException as error:
        errors.put(f"rank {rank} of {count} failed: {type(error).__name__}: {error}")
        raise
    finally:
        leave_group()


def _exit_with(parent: int) -> None:
    """End this process when `parent` (the worker, rank 0) is gone: a worker killed mid-run must not
    leave ranks holding their devices while they wait on a collective (NCCL waits out its timeout)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-rank-0", daemon=True).start()
