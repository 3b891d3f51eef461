"""Putting jobs on the queues. Shared by the API (new work) and the training worker (recovery); no torch."""

from __future__ import annotations

import contextlib
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from workers.contract import SAMPLING_QUEUE, TRAIN_JOB, TRAINING_QUEUE

TRAINING_RESULT_TTL = 30 * 24 * 3600
SAMPLING_JOB_TIMEOUT = 300
SAMPLING_RETRIES = 2


def enqueue_training(redis: Redis, model_id: str, job_id: str) -> Job:
    """Queue the training of `model_id` under the fixed id `job_id`, replacing any earlier RQ job of that
    id (a resume or a recovery reuses the training job's id)."""
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(job_id, connection=redis).delete(remove_from_queue=True)
    return Queue(TRAINING_QUEUE, connection=redis).enqueue(
        TRAIN_JOB,
        model_id,
        job_id=job_id,
        job_timeout=-1,
        result_ttl=TRAINING_RESULT_TTL,
        failure_ttl=TRAINING_RESULT_TTL,
        description=f"train {model_id}",
    )


def enqueue_sampling(redis: Redis, function: str, arguments: dict[str, Any], ttl: int) -> Job:
    """Queue interactive work; results and failures are kept `ttl` seconds, and a job nobody ran in
    `ttl` seconds expires. Sampling is deterministic, so a job whose worker died is simply run again."""
    return Queue(SAMPLING_QUEUE, connection=redis).enqueue(
        function,
        kwargs=arguments,
        job_timeout=SAMPLING_JOB_TIMEOUT,
        result_ttl=ttl,
        failure_ttl=ttl,
        ttl=ttl,
        retry=Retry(max=SAMPLING_RETRIES),
    )
