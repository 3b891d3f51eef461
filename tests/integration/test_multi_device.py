"""One run on two devices through the real training worker: two gloo processes on the CPU (the worker's
own process as rank 0 and one it spawns), with checkpoints, a cancel and a resume."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import httpx
import torch

from tests.integration.conftest import Stack, wait_for_training, wait_until
from workers.shared.storage import Storage

SPEC = {
    "dataset_id": "digits",
    "devices": 2,
    "batch_size": 8,
    "steps": 200,
    "checkpoint_every": 20,
    "log_every": 1,
    "latent_dim": 16,
    "base_channels": 8,
    "encoder_steps": 0,
}


def final_weights(api: httpx.Client, model_id: str) -> dict[str, torch.Tensor]:
    checkpoint = api.get(f"/v1/models/{model_id}/checkpoints/{SPEC['steps']}")
    assert checkpoint.status_code == 200
    state = torch.load(io.BytesIO(checkpoint.content), weights_only=True)
    return state["generator"] | {f"d.{name}": value for name, value in state["discriminator"].items()}


def test_a_two_device_run_checkpoints_cancels_and_resumes_exactly(api: httpx.Client, stack: Stack) -> None:
    job_id = api.post("/v1/training-jobs", json=SPEC).json()["id"]
    deadline = time.monotonic() + 180
    while api.get(f"/v1/training-jobs/{job_id}").json()["step"] < 25:
        assert time.monotonic() < deadline, "the two-device run made no progress"
        time.sleep(0.05)
    assert api.post(f"/v1/training-jobs/{job_id}/cancel").status_code == 202
    canceled = wait_for_training(api, job_id, ("canceled",))
    *periodic, stopped_at = canceled["checkpoint_steps"]
    assert 25 <= stopped_at < SPEC["steps"] and canceled["step"] == stopped_at  # written on cancel
    assert periodic and all(step % 20 == 0 for step in periodic)  # and every checkpoint_every before

    assert api.post(f"/v1/training-jobs/{job_id}/resume").status_code == 202
    done = wait_for_training(api, job_id, ("completed",))
    assert done["step"] == SPEC["steps"] and done["checkpoint_steps"][-1] == SPEC["steps"]
    model_id = done["model_id"]
    assert Storage(stack.root / "data").read_model(model_id).device == "cpu ×2"  # as the worker recorded
    # Rank 0 logged every step exactly once across the two runs.
    rows = api.get(f"/v1/models/{model_id}/metrics").json()["metrics"]
    assert [row["step"] for row in rows] == list(range(1, SPEC["steps"] + 1))

    # Exact: the same spec run without a break ends with the same weights.
    unbroken_id = api.post("/v1/training-jobs", json=SPEC).json()["id"]
    unbroken = wait_for_training(api, unbroken_id, ("completed",))
    resumed_weights = final_weights(api, model_id)
    unbroken_weights = final_weights(api, unbroken["model_id"])
    for name, value in unbroken_weights.items():
        assert torch.equal(value, resumed_weights[name]), name


def spawned_ranks(parent: int) -> list[int]:
    """The processes that `parent` spawned with multiprocessing (its ranks), from /proc."""
    ranks = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if ppid == parent and b"spawn_main" in command:
            ranks.append(int(stat.parent.name))
    return ranks


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_worker_takes_its_ranks_along_and_the_run_is_recovered(
    api: httpx.Client, stack: Stack
) -> None:
    spec = {**SPEC, "steps": 150}
    job_id = api.post("/v1/training-jobs", json=spec).json()["id"]
    wait_until(lambda: api.get(f"/v1/training-jobs/{job_id}").json()["step"] >= 30, 180, "step 30")
    ranks = spawned_ranks(stack.processes["worker-training"].pid)
    assert len(ranks) == 1  # rank 1; rank 0 is the worker itself
    stack.kill("worker-training")
    wait_until(lambda: not any(alive(rank) for rank in ranks), 15, "the spawned rank to exit")

    stack.start_worker("training")
    done = wait_for_training(api, job_id, ("completed",), timeout=300)
    assert done["step"] == 150
    rows = api.get(f"/v1/models/{done['model_id']}/metrics").json()["metrics"]
    assert [row["step"] for row in rows] == list(range(1, 151))
