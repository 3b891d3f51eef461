"""An abandoned training job (its worker died mid-run) is queued again at most a bounded number of
times, then fails saying why. Against the test Redis; no worker runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job

from workers.jobs.recovery import recover_abandoned_training
from workers.shared.contract import TrainingSpec
from workers.shared.progress import progress_key, publish_progress
from workers.shared.serialization import DataSerializer
from workers.shared.storage import ModelManifest, Storage, new_id, training_job_id_for, utc_now


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path)


def running_model(storage: Storage) -> ModelManifest:
    model_id = new_id("m")
    manifest = ModelManifest(
        id=model_id,
        name="abandoned",
        training_job_id=training_job_id_for(model_id),
        created_at=utc_now(),
        spec=TrainingSpec(dataset_id="digits"),
        dataset_id="digits",
        image_size=32,
        channels=1,
        status="running",
    )
    storage.write_model(manifest)
    return manifest


def worker_dies(storage: Storage, redis: Redis, manifest: ModelManifest) -> None:
    """What a worker killed mid-job leaves: the manifest says running, and no RQ job will run it."""
    storage.update_model(manifest.id, status="running")
    redis.delete(Job.key_for(manifest.training_job_id), "rq:queue:training")


def test_an_abandoned_job_is_queued_again_a_bounded_number_of_times(storage: Storage, redis: Redis) -> None:
    manifest = running_model(storage)
    job_id = manifest.training_job_id
    publish_progress(redis, job_id, {"status": "running", "step": 40})
    for attempt in range(1, 4):
        assert recover_abandoned_training(storage, redis, max_recoveries=3) == [job_id]
        again = storage.read_model(manifest.id)
        assert (again.status, again.recoveries) == ("queued", attempt)
        job = Job.fetch(job_id, connection=redis, serializer=DataSerializer)
        assert job.get_status() == "queued" and job.args == [manifest.id]
        worker_dies(storage, redis, manifest)

    assert recover_abandoned_training(storage, redis, max_recoveries=3) == []
    failed = storage.read_model(manifest.id)
    assert failed.status == "failed" and failed.finished_at is not None
    assert "stopped before it finished, 4 times" in failed.error
    assert "GANFORGE_MAX_JOB_RECOVERIES" in failed.error
    assert redis.llen("rq:queue:training") == 0
    progress = json.loads(redis.get(progress_key(job_id)))  # its event streams end
    assert progress["status"] == "failed" and progress["step"] == 40 and progress["error"] == failed.error

    assert recover_abandoned_training(storage, redis, max_recoveries=3) == []  # failed stays failed


def test_a_job_that_is_queued_or_running_is_left_alone(storage: Storage, redis: Redis) -> None:
    manifest = running_model(storage)
    assert recover_abandoned_training(storage, redis, max_recoveries=3) == [manifest.training_job_id]
    storage.update_model(manifest.id, status="running")  # a worker took it; its RQ job is queued
    assert recover_abandoned_training(storage, redis, max_recoveries=3) == []
    assert storage.read_model(manifest.id).recoveries == 1


def test_no_recoveries_allowed_fails_at_once(storage: Storage, redis: Redis) -> None:
    manifest = running_model(storage)
    assert recover_abandoned_training(storage, redis, max_recoveries=0) == []
    assert storage.read_model(manifest.id).status == "failed"
    progress = json.loads(redis.get(progress_key(manifest.training_job_id)))  # a whole snapshot
    assert (progress["status"], progress["step"], progress["steps"]) == ("failed", 0, manifest.spec.steps)
