"""Enqueueing jobs and waiting for their results, over RQ. Jobs are named by their dotted function
name (workers.contract), so the API never imports job code or torch.

Waiting does not poll: RQ writes each result to a Redis stream and `latest_result(timeout)` blocks on
it (XREAD BLOCK). That blocking read needs its own connection with a read timeout longer than the wait.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse, Response
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.results import Result

from app.holdings import claim, holdings_key
from workers.shared.generate_lane import REPLY_TTL_SECONDS
from workers.shared.queueing import enqueue_evaluation, enqueue_sampling, enqueue_training, new_job_id
from workers.shared.serialization import DataSerializer
from workers.shared.settings import Settings


def wants_async(prefer: str | None) -> bool:
    """RFC 7240: `Prefer: respond-async` asks for 202 at once."""
    return bool(prefer) and "respond-async" in {part.strip().lower() for part in prefer.split(",")}


def accepted(job_id: str, location: str, status: str = "queued") -> JSONResponse:
    return JSONResponse(
        {"id": job_id, "status": status, "location": location}, 202, headers={"Location": location}
    )


class JobClient:
    """RQ jobs on behalf of one client (`principal_id`): the sampling and evaluation jobs it queues count
    against its cap on what it keeps in Redis (app.holdings)."""

    def __init__(self, redis: Redis, redis_blocking: Redis, settings: Settings, principal_id: str):
        self.redis = redis
        self.redis_blocking = redis_blocking
        self.settings = settings
        self.principal_id = principal_id

    def enqueue_training(self, model_id: str, job_id: str) -> Job:
        return enqueue_training(self.redis, model_id, job_id)

    def enqueue_sampling(self, function: str, **arguments: Any) -> Job:
        """Interactive work (workers.contract's job names) on the sampling queue."""
        job_id = self._claimed_job_id()
        return enqueue_sampling(
            self.redis_blocking, function, arguments, self.settings.result_ttl_seconds, job_id
        )

    def enqueue_evaluation(self, model_id: str, step: int, samples: int, metrics: list[str]) -> Job:
        job_id = self._claimed_job_id()
        return enqueue_evaluation(
            self.redis, model_id, step, samples, metrics, self.settings.result_ttl_seconds, job_id
        )

    def _claimed_job_id(self) -> str:
        """A new job's id, counted against the client's cap first (429 when it is reached)."""
        job_id = new_job_id()
        claim(self.redis, self.principal_id, Job.key_for(job_id), self.settings.max_held_jobs)
        return job_id

    def fetch(self, job_id: str) -> Job | None:
        try:
            return Job.fetch(job_id, connection=self.redis, serializer=DataSerializer)
        except NoSuchJobError:
            return None

    def answer(self, job: Job, prefer: str | None) -> Response:
        """The job's rendered result if it finishes within the configured wait, else 202 → the job."""
        location = f"/v1/jobs/{job.id}"
        if wants_async(prefer):
            return accepted(job.id, location)
        result = job.latest_result(timeout=math.ceil(self.settings.sync_wait_seconds))
        if result is None:
            return accepted(job.id, location, status="started")
        self._delivered(job)
        return render_result(result)

    def _delivered(self, job: Job) -> None:
        """A result handed to the request that waited for it is kept only briefly, as the generate
        lane's are, and no longer counts against the client's cap."""
        with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.expire(job.key, REPLY_TTL_SECONDS)
            pipeline.expire(Result.get_key(job.id), REPLY_TTL_SECONDS)
            pipeline.zrem(holdings_key(self.principal_id), job.key)
            pipeline.execute()


def render_result(result: Result, failure_status: int = 500) -> Response:
    """A finished RQ job's result as the HTTP answer; a failed job's error comes with `failure_status`."""
    if result.type != Result.Type.SUCCESSFUL:
        last_line = (result.exc_string or "unknown error").strip().splitlines()[-1]
        raise HTTPException(failure_status, f"the job failed: {last_line}")
    return render_value(result.return_value)


def render_value(value: dict[str, Any]) -> Response:
    """A job's return value as the HTTP answer: a sampling job's (workers.results' shape) as its picture
    or document, any other as JSON."""
    if "media_type" not in value:
        return JSONResponse(value)
    if "json" in value:
        return JSONResponse(value["json"], headers=value["headers"])
    return Response(value["body"], media_type=value["media_type"], headers=value["headers"])
