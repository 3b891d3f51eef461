"""One run over two gloo processes on the CPU (models.distributed): close to one device with the same
global batch, and a resume as exact as on one device.

Both ranks run in processes spawned once for the module; rank 0 saves what the tests compare.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pydantic import ValidationError

from models.distributed import Shard, join_group, leave_group, rendezvous, share_state
from models.run import share_resumed
from models.training import Trainer
from tests.unit.test_training import RECIPES, tiny_config
from workers.jobs.multi_device import (
    FOLLOWER_EXIT_SECONDS,
    NotEnoughDevices,
    TrainerPlan,
    check_devices,
    device_group,
    rank_threads,
)
from workers.shared.contract import TrainingSpec
from workers.shared.datasets.packed import IMAGES_FILE, LABELS_FILE

STEPS, RESUME_AT = 6, 3
CHECKED = {"default": {}, "all": RECIPES["all"]}  # every recipe at once: R1, ADA, resnet, 2 D steps
# A 2-device run with global batch B against a 1-device run with batch B, after STEPS steps, fp32. They
# differ because each rank normalises its own B/2 images in BatchNorm. Losses: within LOSS_TOLERANCE at
# every step (measured: 0.02). Weights of G and of D: the distance between the two runs is under
# WEIGHT_TOLERANCE times the distance the 1-device run moved from the initialisation (measured: G 0.60,
# D 0.27). A control, the 1-device run on other batches (batch B/2), is outside both (0.17; G 1.0, D 0.77).
LOSS_TOLERANCE = 0.05
WEIGHT_TOLERANCE = 0.7


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 1, 32, 32), dtype=np.uint8), rng.integers(0, 3, 40)


def config(recipe: str):
    return tiny_config(precision="fp32", **CHECKED[recipe])


def losses(trainer: Trainer, steps: int) -> list[tuple[float, float]]:
    return [(metrics.loss_d, metrics.loss_g) for metrics in (trainer.train_step() for _ in range(steps))]


def _rank(rank: int, port: int, folder: Path) -> None:
    """Per recipe: an unbroken run, and a second one resumed from the first's state at RESUME_AT."""
    torch.set_num_threads(1)
    shard = join_group(rendezvous(2, port), rank, 2, torch.device("cpu"))
    try:
        results = {}
        for recipe in CHECKED:
            unbroken = Trainer(config(recipe), *data(), shard=shard)
            logged = losses(unbroken, RESUME_AT)
            saved = io.BytesIO()
            torch.save(unbroken.state_dict(), saved)
            logged += losses(unbroken, STEPS - RESUME_AT)
            resumed = Trainer(config(recipe), *data(), shard=shard)
            state = torch.load(io.BytesIO(saved.getvalue()), weights_only=True) if rank == 0 else None
            resumed.load_state_dict(share_state(state, shard))  # only rank 0's state reaches rank 1
            losses(resumed, STEPS - RESUME_AT)
            results[recipe] = {"unbroken": unbroken.state_dict(), "resumed": resumed.state_dict()}
            results[recipe]["losses"] = logged
        torch.save(results, folder / f"rank{rank}.pt")
    finally:
        leave_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """What each of the two ranks saved."""
    folder = tmp_path_factory.mktemp("ranks")
    store = rendezvous(2)  # hosted here; both ranks join it
    mp.spawn(_rank, args=(store.port, folder), nprocs=2)
    return [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in range(2)]


def parameters(state: dict, network: str, names: list[str]) -> torch.Tensor:
    return torch.cat([state[network][name].flatten() for name in names])


def distance_ratios(state: dict, losses_run: list, reference: Trainer, start: dict, reference_losses: list):
    """(largest loss difference, {network: distance to the reference / distance the reference moved})."""
    ratios = {}
    for network in ("generator", "discriminator"):
        names = [name for name, _ in getattr(reference, network).named_parameters()]
        ended = parameters(reference.state_dict(), network, names)
        apart = (parameters(state, network, names) - ended).norm()
        ratios[network] = (apart / (ended - parameters(start, network, names)).norm()).item()
    loss_gap = np.abs(np.array(losses_run) - np.array(reference_losses)).max()
    return loss_gap, ratios


def test_two_devices_end_close_to_one_device_with_the_same_global_batch(two_ranks) -> None:
    alone = Trainer(config("default"), *data())
    start = copy.deepcopy(alone.state_dict())
    alone_losses = losses(alone, STEPS)
    distributed = two_ranks[0]["default"]
    loss_gap, ratios = distance_ratios(
        distributed["unbroken"], distributed["losses"], alone, start, alone_losses
    )
    assert 0 < loss_gap <= LOSS_TOLERANCE  # close, and not identical
    assert all(ratio <= WEIGHT_TOLERANCE for ratio in ratios.values()), ratios

    # The control: one device on other batches is not this close.
    other = Trainer(dataclasses.replace(config("default"), batch_size=4), *data())
    other_losses = losses(other, STEPS)
    loss_gap, ratios = distance_ratios(other.state_dict(), other_losses, alone, start, alone_losses)
    assert loss_gap > LOSS_TOLERANCE and all(ratio > WEIGHT_TOLERANCE for ratio in ratios.values())


@pytest.mark.parametrize("recipe", CHECKED)
def test_a_resumed_two_device_run_ends_exactly_as_an_unbroken_one(two_ranks, recipe: str) -> None:
    for rank in two_ranks:
        unbroken, resumed = rank[recipe]["unbroken"], rank[recipe]["resumed"]
        for network in ("generator", "discriminator", "generator_ema"):
            for name, value in unbroken[network].items():
                assert torch.equal(value, resumed[network][name]), f"{network}.{name}"
        assert torch.equal(unbroken["rng"], resumed["rng"])


def test_ranks_hold_the_same_state(two_ranks) -> None:
    """Averaged gradients: the same weights, optimiser states and random streams on every rank (BatchNorm's
    running statistics, unused in training, are each rank's own since its last forward)."""
    for recipe in CHECKED:
        first, second = (rank[recipe]["unbroken"] for rank in two_ranks)
        for network in ("generator", "discriminator", "generator_ema"):
            for name, value in first[network].items():
                if "running_" not in name:
                    assert torch.equal(value, second[network][name]), f"{recipe}: {network}.{name}"
        for optimizer in ("optimizer_g", "optimizer_d"):
            for index, moments in first[optimizer]["state"].items():
                assert torch.equal(moments["exp_avg_sq"], second[optimizer]["state"][index]["exp_avg_sq"])
        assert torch.equal(first["rng"], second["rng"])
        assert torch.equal(first["augment"].pop("generator"), second["augment"].pop("generator"))
        assert first["augment"] == second["augment"]  # p and ADA's statistic


def test_the_ranks_split_the_global_batch_into_disjoint_halves() -> None:
    rows = [list(range(12))[Shard(rank, 3).rows(12)] for rank in range(3)]
    assert rows == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"batch_size": 10, "devices": 4}, "does not split evenly"),
        ({"compile": True, "devices": 2}, "compile runs on one device only"),
        ({"devices": 17}, "less than or equal to 16"),
        ({"devices": 0}, "greater than or equal to 1"),
    ],
)
def test_a_spec_whose_batch_does_not_split_is_refused_naming_devices(spec: dict, reason: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TrainingSpec(dataset_id="digits", **spec)
    (error,) = raised.value.errors()
    assert error["loc"] == ("devices",) and reason in error["msg"]


def test_more_gpus_than_the_host_has_is_refused_with_the_count() -> None:
    available = torch.cuda.device_count()
    asked = max(2, available + 1)
    with pytest.raises(
        NotEnoughDevices, match=f"devices is {asked} but this worker's host has {available} cuda"
    ):
        check_devices(torch.device("cuda"), asked)
    check_devices(torch.device("cpu"), 4)  # a CPU runs any number of gloo processes


def test_cpu_ranks_share_the_workers_threads() -> None:
    assert rank_threads(torch.device("cpu"), 2, 8) == 4
    assert rank_threads(torch.device("cpu"), 4, 2) == 1  # at least one each
    assert rank_threads(torch.device("cuda"), 2, 8) == 8  # a GPU rank keeps the worker's


def test_a_failing_rank_0_ends_the_run_on_every_rank(tmp_path: Path) -> None:
    """The job's own process (rank 0) fails mid-run: the error is its own, and the spawned rank, blocked
    in a collective that rank 0 will never join, is ended at once rather than left to time out."""
    images, labels = data()
    np.save(tmp_path / IMAGES_FILE, images)
    np.save(tmp_path / LABELS_FILE, labels)
    plan = TrainerPlan(config("default").as_dict(), tmp_path, conditional=True)
    started = time.monotonic()
    with (
        pytest.raises(RuntimeError, match="rank 0 gave up"),
        device_group(plan, torch.device("cpu"), 2, threads=1) as shard,
    ):
        trainer = plan.build(shard)
        share_resumed(trainer)  # rank 0's side of what the job does, as models.run.follow_training expects
        assert not shard.agree(False)
        trainer.train_step()
        raise RuntimeError("rank 0 gave up")  # rank 1 now waits for the next step's stop decision
    assert time.monotonic() - started < FOLLOWER_EXIT_SECONDS  # rank 1 was not waited for
    assert not dist.is_initialized()  # the worker process can train its next run
