"""Faults survived, with real processes, each asserting the end state: a training worker killed mid-run,
a sampling worker killed while requests wait, Redis stopped and started, a checkpoint write that fails.
These break their own stack, so they get one of their own."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator

import httpx
import pytest

from models.checkpoints import load_checkpoint
from tests.integration.conftest import Stack, client_of, running_stack, wait_for_training, wait_until
from workers.local.redis_server import start_redis

pytestmark = pytest.mark.integration

TINY = {"dataset_id": "digits", "latent_dim": 16, "base_channels": 8, "batch_size": 8, "encoder_steps": 0}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(tmp_path_factory, "faulty")


@pytest.fixture
def api(faulty: Stack) -> Iterator[httpx.Client]:
    yield from client_of(faulty)


def test_killed_training_worker_is_resumed_from_its_newest_checkpoint(
    api: httpx.Client, faulty: Stack
) -> None:
    spec = {**TINY, "steps": 600, "checkpoint_every": 100, "log_every": 1}
    job_id = api.post("/v1/training-jobs", json=spec).json()["id"]
    wait_until(lambda: api.get(f"/v1/training-jobs/{job_id}").json()["step"] >= 150, 120, "step 150")
    faulty.kill("worker-training")
    at_kill = api.get(f"/v1/training-jobs/{job_id}").json()
    assert at_kill["status"] == "running"
    newest_checkpoint = at_kill["checkpoint_steps"][-1]

    faulty.start_worker("training")
    done = wait_for_training(api, job_id, ("completed",), timeout=300)
    assert done["step"] == 600
    # At most one checkpoint interval was redone: it restarted from the newest checkpoint.
    assert at_kill["step"] - newest_checkpoint <= 100
    rows = api.get(f"/v1/models/{done['model_id']}/metrics").json()["metrics"]
    assert [row["step"] for row in rows] == list(range(1, 601))
    model_dir = faulty.root / "data" / "models" / done["model_id"]
    assert load_checkpoint(model_dir)["step"] == 600  # complete and loadable
    image = api.post(f"/v1/models/{done['model_id']}/generate", json={"seed": 1})
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


def test_killed_sampling_worker_loses_no_request(api: httpx.Client, faulty: Stack) -> None:
    job = api.post("/v1/training-jobs", json={**TINY, "steps": 4}).json()
    model_id = wait_for_training(api, job["id"], ("completed",))["model_id"]
    faulty.kill("worker-sampling")
    waiting = [
        api.post(f"/v1/models/{model_id}/generate", json={"seed": seed}, headers={"Prefer": "respond-async"})
        for seed in range(5)
    ]
    assert all(response.status_code == 202 for response in waiting)
    faulty.start_worker("sampling")
    for response in waiting:
        location = response.headers["location"]
        wait_until(lambda loc=location: api.get(loc).json()["status"] == "finished", 60, location)
        result = api.get(location + "/result")
        assert result.status_code == 200 and result.content.startswith(b"\x89PNG")
    assert api.post(f"/v1/models/{model_id}/generate", json={"seed": 9}).status_code == 200


def test_redis_down_then_up(api: httpx.Client, faulty: Stack) -> None:
    job = api.post("/v1/training-jobs", json={**TINY, "steps": 4}).json()
    model_id = wait_for_training(api, job["id"], ("completed",))["model_id"]
    faulty.kill("worker-training")  # so a queued job waits in Redis across the restart
    queued = api.post("/v1/training-jobs", json={**TINY, "steps": 4}).json()

    redis = faulty.processes.pop("redis")
    redis.terminate()
    redis.wait(timeout=10)
    started = time.monotonic()
    down = api.post(f"/v1/models/{model_id}/generate", json={"seed": 1})
    assert down.status_code == 503 and "Redis" in down.json()["detail"] and down.headers["retry-after"]
    assert api.post("/v1/training-jobs", json={**TINY, "steps": 4}).status_code == 503
    assert time.monotonic() - started < 5  # fast, no hang
    assert api.get(f"/v1/models/{model_id}").status_code == 200  # needs no Redis
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 503

    faulty.processes["redis"] = start_redis(faulty.redis_port, faulty.root / "redis")  # same folder: AOF
    faulty.start_worker("training")
    done = wait_for_training(api, queued["id"], ("completed",), timeout=120)  # the queued job survived
    assert done["step"] == 4
    wait_until(lambda: api.get("/readyz").status_code == 200, 60, "readiness")
    assert api.post(f"/v1/models/{model_id}/generate", json={"seed": 1}).status_code == 200


def test_failed_checkpoint_write_keeps_the_previous_one(api: httpx.Client, faulty: Stack) -> None:
    spec = {**TINY, "steps": 400, "checkpoint_every": 50, "log_every": 1}
    job_id = api.post("/v1/training-jobs", json=spec).json()["id"]
    wait_until(lambda: api.get(f"/v1/training-jobs/{job_id}").json()["checkpoint_steps"], 120, "a checkpoint")
    first = api.get(f"/v1/training-jobs/{job_id}").json()["checkpoint_steps"][-1]
    model_dir = faulty.root / "data" / "models" / f"m_{job_id.removeprefix('tj_')}"
    size = (model_dir / "checkpoints" / f"step-{first:06d}.pt").stat().st_size
    # A disk that fills up: the worker may write no file larger than half a checkpoint from now on.
    resource.prlimit(faulty.processes["worker-training"].pid, resource.RLIMIT_FSIZE, (size // 2, size // 2))

    failed = wait_for_training(api, job_id, ("failed",))
    assert "could not write the checkpoint" in failed["error"] and "is intact" in failed["error"]
    steps = failed["checkpoint_steps"]
    assert steps and steps[-1] >= first
    assert load_checkpoint(model_dir)["step"] == steps[-1]  # the newest one on disk loads
    assert not list((model_dir / "checkpoints").glob(".*.tmp"))  # no half-written file left
    faulty.kill("worker-training")
    faulty.start_worker("training")  # without the limit, for the tests after this one
