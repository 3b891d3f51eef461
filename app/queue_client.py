"""Enqueueing jobs over RQ, waiting for their results, and reading them back. Jobs are named by their
dotted function name (workers.contract), so the API never imports job code or torch.

Waiting does not poll, and holds no thread: RQ writes each result to a Redis stream, and the API
blocks on it (XREAD BLOCK, as RQ's own `latest_result(timeout)` does) on the asyncio Redis client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse, Response
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.results import Result
from starlette.concurrency import run_in_threadpool

from app.holdings import claim, holdings_key
from app.schemas import Accepted, JobStatus
from workers.shared.contract import WebhookFields
from workers.shared.generate_lane import REPLY_TTL_SECONDS
from workers.shared.job_bodies import failure_line, rq_job_body
from workers.shared.queueing import (
    enqueue_evaluation,
    enqueue_export,
    enqueue_sampling,
    enqueue_training,
    new_job_id,
)
from workers.shared.serialization import DataSerializer
from workers.shared.settings import Settings


def wants_async(prefer: str | None) -> bool:
    """RFC 7240: `Prefer: respond-async` asks for 202 at once."""
    return bool(prefer) and "respond-async" in {part.strip().lower() for part in prefer.split(",")}


def accepted(job_id: str, location: str, status: str = "queued") -> JSONResponse:
    body = Accepted(id=job_id, status=status, location=location)
    return JSONResponse(body.model_dump(), 202, headers={"Location": location})


def fetch_job(redis: Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=redis, serializer=DataSerializer)
    except NoSuchJobError:
        return None


class JobClient:
    """RQ jobs on behalf of one client (`principal_id`): the sampling and evaluation jobs it queues count
    against its cap on what it keeps in Redis (app.holdings)."""

    def __init__(self, redis: Redis, redis_async: AsyncRedis, settings: Settings, principal_id: str):
        self.redis = redis
        self.redis_async = redis_async
        self.settings = settings
        self.principal_id = principal_id

    def enqueue_training(self, model_id: str, job_id: str) -> Job:
        return enqueue_training(self.redis, model_id, job_id)

    async def enqueue_sampling(
        self, function: str, *, webhook: WebhookFields | None = None, **arguments: Any
    ) -> Job:
        """Interactive work (workers.contract's job names) on the sampling queue; `webhook`: the request's,
        to hear the job's end. RQ enqueues over the sync client, so in the thread pool: the event loop
        never waits on Redis."""
        return await run_in_threadpool(self._enqueue_sampling, function, arguments, webhook)

    def _enqueue_sampling(
        self, function: str, arguments: dict[str, Any], webhook: WebhookFields | None
    ) -> Job:
        job_id = self.claimed_job_id()
        ttl = self.settings.result_ttl_seconds
        return enqueue_sampling(self.redis, function, arguments, ttl, job_id, webhook)

    def enqueue_evaluation(
        self, model_id: str, step: int, samples: int, metrics: list[str], webhook: WebhookFields | None = None
    ) -> Job:
        job_id = self.claimed_job_id()
        return enqueue_evaluation(
            self.redis, model_id, step, samples, metrics, self.settings.result_ttl_seconds, job_id, webhook
        )

    def enqueue_export(self, model_id: str, export_id: str, webhook: WebhookFields | None = None) -> Job:
        """Queue export `export_id`, whose id was claimed (claimed_job_id) and record stored first."""
        ttl = self.settings.result_ttl_seconds
        return enqueue_export(self.redis, model_id, export_id, ttl, webhook)

    def claimed_job_id(self) -> str:
        """A new job's id, counted against the client's cap first (429 when it is reached)."""
        job_id = new_job_id()
        claim(self.redis, self.principal_id, Job.key_for(job_id), self.settings.max_held_jobs)
        return job_id

    async def answer(self, job: Job, prefer: str | None) -> Response:
        """The job's rendered result if it finishes within the configured wait, else 202 → the job."""
        location = f"/v1/jobs/{job.id}"
        wait = self.settings.sync_wait_seconds
        if wants_async(prefer) or wait <= 0:
            return accepted(job.id, location)
        result = await self._result_within(job.id, wait)
        if result is None:
            return accepted(job.id, location, status="started")
        await self._delivered(job)
        return render_result(result)

    async def _result_within(self, job_id: str, seconds: float) -> Result | None:
        streams = await self.redis_async.xread(
            {Result.get_key(job_id): "0-0"}, block=max(1, round(seconds * 1000))
        )
        if not streams:
            return None
        result_id, payload = streams[0][1][-1]  # the newest result of the one stream read
        return Result.restore(
            job_id, result_id.decode(), payload, connection=self.redis, serializer=DataSerializer
        )

    async def _delivered(self, job: Job) -> None:
        """A result handed to the request that waited for it is kept only briefly, as the generate
        lane's are, and no longer counts against the client's cap."""
        async with self.redis_async.pipeline(transaction=False) as pipeline:
            pipeline.expire(job.key, REPLY_TTL_SECONDS)
            pipeline.expire(Result.get_key(job.id), REPLY_TTL_SECONDS)
            pipeline.zrem(holdings_key(self.principal_id), job.key)
            await pipeline.execute()


@dataclass(frozen=True)
class RqJob:
    """An RQ job as `/v1/jobs` reports it (app.job_handles)."""

    job: Job
    redis: Redis

    @classmethod
    def find(cls, redis: Redis, job_id: str) -> RqJob | None:
        job = fetch_job(redis, job_id)
        return cls(job, redis) if job is not None else None

    def status(self) -> JobStatus:
        status = self.job.get_status()
        result = self.job.latest_result() if status in ("finished", "failed") else None
        return rq_job_body(self.job, self.redis, status, failure_line(result))

    def result(self) -> Response:
        job = self.job
        result = job.latest_result()
        if result is None:
            raise HTTPException(409, f"job {job.id!r} has not finished (status: {job.get_status()})")
        return render_result(result, failure_status=409)


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
