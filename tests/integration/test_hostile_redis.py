"""Someone who can write to Redis, and Redis at its limits, against a real stack (redis-server, a worker
per queue, uvicorn) of this module's own:

- a crafted pickle where ganforge reads (an RQ job's data, an RQ result, a generate answer, the
  generate queue) is refused as data: the payload never runs, the API answers a clean error;
- Redis at its maxmemory: new work gets 503 with Retry-After, and nothing queued is evicted;
- a training job whose workers keep dying is queued again a bounded number of times, then fails;
- and afterwards every process is alive and serving.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.results import Result
from rq.serializers import PickleSerializer

from tests.conftest import Payload
from tests.integration.conftest import Stack, client_of, running_stack, wait_for_training, wait_until
from workers.shared.contract import INTERPOLATE_JOB, TrainingSpec
from workers.shared.generate_lane import QUEUE_KEY, job_key
from workers.shared.progress import progress_key
from workers.shared.serialization import DataSerializer
from workers.shared.storage import ModelManifest, Storage, new_id, training_job_id_for, utc_now

pytestmark = pytest.mark.integration

TINY = {"dataset_id": "digits", "latent_dim": 16, "base_channels": 8, "batch_size": 8, "encoder_steps": 0}
MiB = 2**20
FULL_FOR_SECONDS = 20  # longer than a worker's idle dequeue (15 s)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(tmp_path_factory, "hostile")


@pytest.fixture
def api(hostile: Stack) -> Iterator[httpx.Client]:
    yield from client_of(hostile)


@pytest.fixture
def redis(hostile: Stack) -> Iterator[Redis]:
    client = Redis.from_url(hostile.env["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def model_id(hostile: Stack) -> str:
    with httpx.Client(base_url=hostile.url, timeout=60) as client:
        job = client.post("/v1/training-jobs", json={**TINY, "steps": 4}).json()
        return wait_for_training(client, job["id"], ("completed",))["model_id"]


def exited(stack: Stack) -> dict[str, int]:
    return {name: code for name, process in stack.processes.items() if (code := process.poll()) is not None}


def refused_as_data(response: httpx.Response) -> None:
    assert response.status_code == 502, response.text
    assert "not data ganforge wrote" in response.json()["detail"]


def serves(api: httpx.Client, model_id: str) -> None:
    image = api.post(f"/v1/models/{model_id}/generate", json={"seed": 5})
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    strip = api.post(f"/v1/models/{model_id}/interpolate", json={"latents": [{"seed": 1}, {"seed": 2}]})
    assert strip.status_code == 200 and strip.content.startswith(b"\x89PNG")


def test_the_stack_redis_has_a_memory_limit_and_never_evicts(redis: Redis) -> None:
    assert int(redis.config_get("maxmemory")["maxmemory"]) == 1024 * MiB
    assert redis.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"


def test_a_pickled_job_is_never_run_by_a_worker(
    api: httpx.Client, redis: Redis, model_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-in-worker"
    crafted = Queue("sampling", connection=redis, serializer=PickleSerializer).enqueue(
        INTERPOLATE_JOB, Payload(marker)
    )
    job = Job.fetch(crafted.id, connection=redis, serializer=DataSerializer)
    wait_until(lambda: job.get_status(refresh=True) == "failed", 30, "the worker to refuse the job")
    assert "DeserializationError" in job.latest_result().exc_string
    assert not marker.exists()
    refused_as_data(api.get(f"/v1/jobs/{crafted.id}"))
    serves(api, model_id)  # the sampling worker goes on


def test_a_pickled_result_is_never_unpickled_by_the_api(
    api: httpx.Client, redis: Redis, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-in-api"
    # A job with proper data on a queue no worker serves, then a pickled result written for it.
    job = Queue("nobody", connection=redis, serializer=DataSerializer).enqueue(INTERPOLATE_JOB, kwargs={})
    pickled = Job.fetch(job.id, connection=redis, serializer=PickleSerializer)
    Result.create(pickled, Result.Type.SUCCESSFUL, ttl=300, return_value=Payload(marker))
    pickled.set_status("finished")
    refused_as_data(api.get(f"/v1/jobs/{job.id}"))
    refused_as_data(api.get(f"/v1/jobs/{job.id}/result"))
    assert not marker.exists()


def test_a_pickled_generate_answer_is_never_unpickled(
    api: httpx.Client, redis: Redis, model_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-in-api"
    job_id = "gen_" + "ab" * 12
    crafted = pickle.dumps([{"media_type": "image/png", "body": Payload(marker), "headers": {}}, None])
    redis.hset(job_key(job_id), mapping={"status": "finished", "enqueued_at": "1", "answer": crafted})
    redis.expire(job_key(job_id), 300)
    refused_as_data(api.get(f"/v1/jobs/{job_id}"))
    refused_as_data(api.get(f"/v1/jobs/{job_id}/result"))
    # Junk on the generate queue: the sampling worker drops it and goes on.
    redis.rpush(QUEUE_KEY, crafted, b"{not json")
    wait_until(lambda: redis.llen(QUEUE_KEY) == 0, 30, "the worker to take the junk")
    assert not marker.exists()
    serves(api, model_id)


def test_full_redis_is_503_and_evicts_nothing(
    api: httpx.Client, redis: Redis, model_id: str, hostile: Stack
) -> None:
    queued = Queue("nobody", connection=redis, serializer=DataSerializer).enqueue(INTERPOLATE_JOB, kwargs={})
    before = redis.config_get("maxmemory")["maxmemory"]
    redis.config_set("maxmemory", 1)
    try:
        refused = [
            api.post(
                f"/v1/models/{model_id}/generate", json={"seed": 1}, headers={"Prefer": "respond-async"}
            ),
            api.post(f"/v1/models/{model_id}/interpolate", json={"latents": [{"seed": 1}, {"seed": 2}]}),
            api.post("/v1/training-jobs", json={**TINY, "steps": 4}),
        ]
        time.sleep(FULL_FOR_SECONDS)  # every worker's loop meets the refusal: none may quit on it
    finally:
        redis.config_set("maxmemory", before)
    assert exited(hostile) == {}
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "30" and "maxmemory" in response.json()["detail"]
    assert Job.fetch(queued.id, connection=redis, serializer=DataSerializer).get_status() == "queued"
    assert not [
        job for job in api.get("/v1/training-jobs").json()["training_jobs"] if job["status"] == "queued"
    ]
    serves(api, model_id)


@pytest.mark.parametrize(
    "crafted", [b"\x80\x04not json", b"[1, 2]", b'{"step": "many", "steps": {}}', b'"a string"']
)
def test_a_crafted_progress_record_is_ignored_not_a_500(
    api: httpx.Client, redis: Redis, model_id: str, crafted: bytes
) -> None:
    job_id = training_job_id_for(model_id)
    redis.set(progress_key(job_id), crafted, ex=300)
    try:
        job = api.get(f"/v1/training-jobs/{job_id}")
        assert job.status_code == 200, job.text
        assert job.json()["status"] == "completed" and job.json()["step"] == 4  # from the files on disk
        listed = api.get("/v1/training-jobs")
        assert listed.status_code == 200 and job_id in [j["id"] for j in listed.json()["training_jobs"]]
        with api.stream("GET", f"/v1/training-jobs/{job_id}/events") as events:
            first = next(line for line in events.iter_lines() if line.startswith("data: "))
        assert json.loads(first.removeprefix("data: "))["status"] == "completed"
    finally:
        redis.delete(progress_key(job_id))


def abandoned_model(hostile: Stack, recoveries: int) -> ModelManifest:
    """A model whose manifest says running, with no RQ job: what a worker killed mid-run leaves behind
    (after `recoveries` earlier recoveries)."""
    storage = Storage(Path(hostile.env["GANFORGE_DATA_DIR"]))
    model = new_id("m")
    manifest = ModelManifest(
        id=model,
        name="abandoned",
        training_job_id=training_job_id_for(model),
        created_at=utc_now(),
        spec=TrainingSpec(**TINY, steps=4),
        dataset_id="digits",
        image_size=32,
        channels=1,
        status="running",
        recoveries=recoveries,
    )
    storage.write_model(manifest)
    return manifest


def test_an_abandoned_job_is_requeued_a_bounded_number_of_times(api: httpx.Client, hostile: Stack) -> None:
    """GANFORGE_MAX_JOB_RECOVERIES is 3: one recovered twice is queued again (and trains); one recovered
    three times fails, saying why. The training worker looks every 15 s while idle."""
    again = abandoned_model(hostile, recoveries=2)
    spent = abandoned_model(hostile, recoveries=3)
    failed = wait_for_training(api, spent.training_job_id, ("failed",), timeout=90)
    assert "stopped before it finished, 4 times" in failed["error"]
    assert "GANFORGE_MAX_JOB_RECOVERIES" in failed["error"]
    assert wait_for_training(api, again.training_job_id, ("completed",), timeout=120)["step"] == 4


def test_every_process_is_alive_and_serving_afterwards(
    api: httpx.Client, hostile: Stack, model_id: str
) -> None:
    assert exited(hostile) == {} and len(hostile.processes) == 6  # redis, four workers, the API
    assert api.get("/readyz").status_code == 200
    serves(api, model_id)
