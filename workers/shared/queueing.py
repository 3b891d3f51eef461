"""Putting jobs on the queues. Shared by the API (new work) and the training worker (recovery); no torch."""

from __future__ import annotations

import uuid
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from workers.shared.contract import (
    EVALUATE_JOB,
    EVALUATION_QUEUE,
    EXPORT_JOB,
    OPTIMISATION_QUEUE,
    OPTIMISING_JOBS,
    SAMPLING_QUEUE,
    TRAIN_JOB,
    TRAINING_QUEUE,
    WebhookFields,
)
from workers.shared.serialization import DataSerializer
from workers.shared.webhooks import job_callbacks

TRAINING_RESULT_TTL = 30 * 24 * 3600
SAMPLING_JOB_TIMEOUT = 300
SAMPLING_RETRIES = 2
EVALUATION_JOB_TIMEOUT = 6 * 3600
EXPORT_JOB_TIMEOUT = 3600


def enqueue_training(redis: Redis, model_id: str, job_id: str) -> Job:
    """Queue the training of `model_id` under the fixed id `job_id`, replacing any earlier RQ job of that
    id (a resume or a recovery reuses the training job's id)."""
    _delete_job(redis, job_id)
    return Queue(TRAINING_QUEUE, connection=redis, serializer=DataSerializer).enqueue(
        TRAIN_JOB,
        model_id,
        job_id=job_id,
        job_timeout=-1,
        result_ttl=TRAINING_RESULT_TTL,
        failure_ttl=TRAINING_RESULT_TTL,
        description=f"train {model_id}",
    )


def _delete_job(redis: Redis, job_id: str) -> None:
    try:
        job = Job.fetch(job_id, connection=redis, serializer=DataSerializer)
    except NoSuchJobError:
        return
    try:
        job.delete(remove_from_queue=True)
    except ValueError:
        # RQ 3.0 cannot delete a job whose worker died: its execution record expired while the job's
        # list of executions still names it. Drop that stale list, then delete.
        redis.delete(job.execution_registry.key)
        job.delete(remove_from_queue=True)


def new_job_id() -> str:
    """An id for an RQ job, chosen before it is queued (so the API can count it first)."""
    return uuid.uuid4().hex


def enqueue_sampling(
    redis: Redis,
    function: str,
    arguments: dict[str, Any],
    ttl: int,
    job_id: str | None = None,
    webhook: WebhookFields | None = None,
) -> Job:
    """Queue interactive work; results and failures are kept `ttl` seconds, and a job nobody ran in
    `ttl` seconds expires. Sampling is deterministic, so a job whose worker died is simply run again.
    Jobs that optimise go on their own queue, which sampling workers take from only when the sampling
    queue is empty. A `webhook` hears its end (workers.shared.webhooks)."""
    queue = OPTIMISATION_QUEUE if function in OPTIMISING_JOBS else SAMPLING_QUEUE
    return Queue(queue, connection=redis, serializer=DataSerializer).enqueue(
        function,
        kwargs=arguments,
        job_id=job_id,
        job_timeout=SAMPLING_JOB_TIMEOUT,
        result_ttl=ttl,
        failure_ttl=ttl,
        ttl=ttl,
        retry=Retry(max=SAMPLING_RETRIES),
        **(job_callbacks(webhook) if webhook else {}),
    )


def enqueue_evaluation(
    redis: Redis,
    model_id: str,
    step: int,
    samples: int,
    metrics: list[str],
    ttl: int,
    job_id: str | None = None,
    webhook: WebhookFields | None = None,
) -> Job:
    """Queue the evaluation of one checkpoint on the evaluation queue (its own worker: a long evaluation
    never delays training or generation). The row it makes is stored with the model; the job's result
    is kept `ttl` seconds. A `webhook` hears its end."""
    return Queue(EVALUATION_QUEUE, connection=redis, serializer=DataSerializer).enqueue(
        EVALUATE_JOB,
        kwargs={"model_id": model_id, "step": step, "samples": samples, "metrics": metrics},
        job_id=job_id,
        job_timeout=EVALUATION_JOB_TIMEOUT,
        result_ttl=ttl,
        failure_ttl=ttl,
        description=f"evaluate {model_id} step {step} on {samples} samples",
        **(job_callbacks(webhook) if webhook else {}),
    )


def enqueue_export(
    redis: Redis, model_id: str, export_id: str, ttl: int, webhook: WebhookFields | None = None
) -> Job:
    """Queue the export `export_id` (its record already stored, workers.shared.exports) on the evaluation
    queue: not interactive, so it never delays the generate lane or training. The export's id is its
    job's id; the job's result (the finished record) is kept `ttl` seconds. A `webhook` hears its end."""
    return Queue(EVALUATION_QUEUE, connection=redis, serializer=DataSerializer).enqueue(
        EXPORT_JOB,
        kwargs={"model_id": model_id, "export_id": export_id},
        job_id=export_id,
        job_timeout=EXPORT_JOB_TIMEOUT,
        result_ttl=ttl,
        failure_ttl=ttl,
        description=f"export {model_id} as {export_id}",
        **(job_callbacks(webhook) if webhook else {}),
    )
