"""Three "hosts" sharing only Redis and an S3 bucket (moto's server), each worker with its own empty
cache folder, and the API with one of its own: a training run killed with its host resumes on another
from the bucket's newest checkpoint, and a host that never saw the model serves it, byte for byte as
the first did. An object deleted from the bucket under a job fails that job, naming it, and no other;
while the store cannot be reached, workers leave the queued jobs where they are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue

from tests.archives import labelled_zip
from tests.integration.conftest import Stack, client_of, wait_for_training, wait_until
from tests.s3 import Link, new_bucket, s3_client, s3_env
from workers.local.redis_server import start_redis
from workers.shared.contract import TRAINING_QUEUE
from workers.shared.serialization import DataSerializer

pytestmark = pytest.mark.integration

TINY = {"dataset_id": "digits", "latent_dim": 16, "base_channels": 8, "batch_size": 8, "encoder_steps": 0}


class Hosts(Stack):
    """The stack's processes spread over hosts: each host is a cache folder of its own."""

    def __init__(self, root: Path, endpoint: str):
        self.bucket = new_bucket(endpoint)
        self.endpoint = endpoint
        self.link = Link(int(endpoint.rsplit(":", 1)[1]))  # the processes reach the store through it
        self.link.connect()
        store = {**s3_env(f"http://127.0.0.1:{self.link.port}"), "GANFORGE_STORAGE_URL": self.url_of_store}
        super().__init__(root, store)
        self.env |= self.host("api")

    @property
    def url_of_store(self) -> str:
        return f"s3://{self.bucket}/ganforge"

    def host(self, name: str) -> dict[str, str]:
        folder = self.root / name
        return {"GANFORGE_CACHE_DIR": str(folder / "cache"), "GANFORGE_DATA_DIR": str(folder / "data")}

    def cache(self, name: str) -> Path:
        return self.root / name / "cache"

    def start(self) -> None:
        self.processes["redis"] = start_redis(self.redis_port, self.root / "redis")
        for queue in ("training", "evaluation", "sampling"):
            self.start_worker(queue, f"{queue}-a", self.host("a"))
        self.start_webhooks_worker()
        self._spawn("api", "-m", "uvicorn", "app.main:app", "--port", str(self.api_port))
        self.wait_ready()

    def s3(self) -> Any:
        """A boto3 client of the bucket's server."""
        return s3_client(self.endpoint)

    def bucket_keys(self) -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Hosts]:
    running = Hosts(tmp_path_factory.mktemp("hosts"), s3_endpoint)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def api(hosts: Hosts) -> Iterator[httpx.Client]:
    yield from client_of(hosts)


def test_the_store_is_ready(api: httpx.Client) -> None:
    assert api.get("/readyz").json()["storage"] == "ok"


def test_a_run_killed_with_its_host_resumes_on_another_and_a_third_serves_it(
    api: httpx.Client, hosts: Hosts
) -> None:
    spec = {**TINY, "steps": 300, "checkpoint_every": 50, "log_every": 1, "keep_checkpoints": 10}
    job_id = api.post("/v1/training-jobs", json=spec).json()["id"]
    wait_until(lambda: api.get(f"/v1/training-jobs/{job_id}").json()["step"] >= 120, 180, "step 120")
    hosts.kill("training-a")
    at_kill = api.get(f"/v1/training-jobs/{job_id}").json()
    newest_checkpoint = at_kill["checkpoint_steps"][-1]  # as the bucket lists them
    assert at_kill["status"] == "running" and newest_checkpoint >= 100

    hosts.start_worker("training", "training-b", hosts.host("b"))
    done = wait_for_training(api, job_id, ("completed",), timeout=300)
    model_id = done["model_id"]
    assert done["step"] == 300 and at_kill["step"] - newest_checkpoint <= 50
    rows = api.get(f"/v1/models/{model_id}/metrics").json()["metrics"]
    assert [row["step"] for row in rows] == list(range(1, 301))
    final = f"models/{model_id}/checkpoints/step-000300.pt"
    assert f"ganforge/{final}" in hosts.bucket_keys()
    assert (hosts.cache("b") / final).is_file() and not (hosts.cache("a") / final).exists()
    checkpoints = f"models/{model_id}/checkpoints"
    fetched = sorted(path.name for path in (hosts.cache("b") / checkpoints).iterdir())
    assert fetched[0] == f"step-{newest_checkpoint:06d}.pt"  # only the newest, fetched to resume from

    first = api.post(f"/v1/models/{model_id}/generate", json={"seed": 5})
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
    assert (hosts.cache("a") / final).is_file()  # host a's sampling worker fetched it
    hosts.kill("sampling-a")
    hosts.start_worker("sampling", "sampling-c", hosts.host("c"))
    third = api.post(f"/v1/models/{model_id}/generate", json={"seed": 5})
    assert third.status_code == 200 and third.content == first.content
    assert (hosts.cache("c") / final).is_file()
    assert not (hosts.cache("api") / "models" / model_id / "checkpoints").exists()


def test_an_object_deleted_under_a_job_fails_that_job_and_no_other(api: httpx.Client, hosts: Hosts) -> None:
    dataset = api.post(
        "/v1/datasets", files={"file": ("pets.zip", labelled_zip())}, data={"image_size": "32"}
    ).json()
    hosts.s3().delete_object(Bucket=hosts.bucket, Key=f"ganforge/datasets/{dataset['id']}/images.npy")
    doomed = api.post("/v1/training-jobs", json={**TINY, "dataset_id": dataset["id"], "steps": 4}).json()
    fine = api.post("/v1/training-jobs", json={**TINY, "steps": 4}).json()
    failed = wait_for_training(api, doomed["id"], ("failed",))
    assert f"dataset {dataset['id']}: images.npy is not in the store s3://{hosts.bucket}" in failed["error"]
    assert wait_for_training(api, fine["id"], ("completed",))["step"] == 4


def test_workers_wait_for_a_store_that_went_away_and_lose_no_job(api: httpx.Client, hosts: Hosts) -> None:
    for name in [name for name in hosts.processes if name.startswith("training-")]:
        hosts.kill(name)
    job = api.post("/v1/training-jobs", json={**TINY, "steps": 4}).json()
    hosts.link.cut()
    try:
        ready = api.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["storage"].startswith(f"the store {hosts.url_of_store} could not reach")
        refused = api.get(f"/v1/training-jobs/{job['id']}")
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
        hosts.start_worker("training", "training-d", hosts.host("d"))
        log = hosts.root / "training-d.log"
        wait_until(lambda: "taking no job" in log.read_text(), 120, "the worker to wait for the store")
        queue = Queue(
            TRAINING_QUEUE, connection=Redis.from_url(hosts.env["REDIS_URL"]), serializer=DataSerializer
        )
        assert queue.job_ids == [job["id"]]  # still queued, not taken and failed
    finally:
        hosts.link.connect()
    assert wait_for_training(api, job["id"], ("completed",))["step"] == 4
