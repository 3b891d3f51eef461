"""The JSON of a job as `GET` answers it, built where the API and the workers can both build it: the API
answers it, and a webhook delivers the same document when the job moves (workers.shared.webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from redis import Redis
from rq.job import Job
from rq.results import Result

from workers.shared.contract import (
    ARITHMETIC_JOB,
    EVALUATE_JOB,
    EXPORT_JOB,
    INTERPOLATE_JOB,
    INVERT_JOB,
    TRAIN_JOB,
    TRANSFORM_JOB,
    TrainingSpec,
)
from workers.shared.progress import read_progress
from workers.shared.storage import ModelManifest, Storage, TrainingStatus

KINDS = {
    TRAIN_JOB: "training",
    INTERPOLATE_JOB: "interpolate",
    ARITHMETIC_JOB: "arithmetic",
    INVERT_JOB: "invert",
    TRANSFORM_JOB: "transform",
    EVALUATE_JOB: "evaluation",
    EXPORT_JOB: "export",
}


class LiveProgress(BaseModel):
    step: int
    steps: int
    images_per_second: float | None = None
    eta_seconds: float | None = None
    loss_d: float | None = None
    loss_g: float | None = None
    d_real: float | None = Field(None, description="Mean D(x) on real images.")
    d_fake: float | None = Field(None, description="Mean D(G(z)) before G's update.")
    augment_p: float | None = Field(None, description="The augmentation's probability (adaptive with `ada`).")
    fid: float | None = Field(None, description="FID of the newest evaluation during training.")
    kid: float | None = Field(None, description="KID of the newest evaluation during training.")
    first_step_seconds: float | None = Field(None, description="The first step's time: torch.compile's cost.")
    updated_at: datetime | None = None


class TrainingJob(LiveProgress):
    id: str
    model_id: str
    name: str
    status: TrainingStatus
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    device: str | None = None
    checkpoint_steps: list[int]
    spec: TrainingSpec
    links: dict[str, str]


class JobStatus(BaseModel):
    id: str
    kind: str = Field(description="training, generate, …")
    status: str = Field(description="queued, started, finished, failed, canceled, …")
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    progress: dict[str, Any] | None = None
    error: str | None = None
    result_url: str | None = Field(None, description="Where the result is, once finished.")


def live_progress(progress: dict | None) -> LiveProgress | None:
    """The snapshot as LiveProgress; one that does not fit (not the worker's) is ignored, not a 500."""
    try:
        return LiveProgress.model_validate(progress) if progress else None
    except ValidationError:
        return None


def training_job_body(manifest: ModelManifest, storage: Storage, progress: dict | None) -> TrainingJob:
    """The manifest on disk says what the job is and how it ended; `progress` (from Redis) is its live
    state."""
    checkpoints = storage.checkpoint_steps(manifest.id)
    live = live_progress(progress)
    step = live.step if live else (checkpoints[-1] if checkpoints else 0)
    job_id = manifest.training_job_id
    samples = storage.sample_steps(manifest.id)
    return TrainingJob(
        **(live.model_dump() if live else {}) | {"step": step, "steps": manifest.spec.steps},
        id=job_id,
        model_id=manifest.id,
        name=manifest.name,
        status=manifest.status,
        error=manifest.error,
        created_at=manifest.created_at,
        started_at=manifest.started_at,
        finished_at=manifest.finished_at,
        device=manifest.device,
        checkpoint_steps=checkpoints,
        spec=manifest.spec,
        links={
            "self": f"/v1/training-jobs/{job_id}",
            "events": f"/v1/training-jobs/{job_id}/events",
            "model": f"/v1/models/{manifest.id}",
            "latest_sample": f"/v1/models/{manifest.id}/samples/{samples[-1]}.png" if samples else "",
        },
    )


def rq_job_body(job: Job, redis: Redis, status: str, error: str | None = None) -> JobStatus:
    """An RQ job as `/v1/jobs/{id}` shows it, in `status` (given: a job's own success or failure
    callback runs before RQ stores its status)."""
    return JobStatus(
        id=job.id,
        kind=KINDS.get(job.func_name, job.func_name),
        status=status,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        progress=read_progress(redis, job.id),
        error=error,
        result_url=f"/v1/jobs/{job.id}/result" if status == "finished" else None,
    )


def lane_job_body(
    job_id: str,
    status: str,
    enqueued_at: datetime | None,
    ended_at: datetime | None,
    error: str | None = None,
) -> JobStatus:
    """A generate request on the generate lane (workers.shared.generate_lane) as `/v1/jobs/{id}` shows it."""
    return JobStatus(
        id=job_id,
        kind="generate",
        status=status,
        enqueued_at=enqueued_at,
        ended_at=ended_at,
        error=error,
        result_url=f"/v1/jobs/{job_id}/result" if status == "finished" else None,
    )


def failure_line(result: Result | None) -> str | None:
    """The last line of a failed result's traceback, which says what went wrong; None for a success."""
    if result is None or result.type == Result.Type.SUCCESSFUL:
        return None
    return (result.exc_string or "failed").strip().splitlines()[-1]
