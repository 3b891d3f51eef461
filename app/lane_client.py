"""Submitting generate requests to the generate lane (workers.generate_lane) and waiting for their
answers, on the asyncio Redis client: the wait holds no thread, and a request with its wait costs one
round trip.

That one round trip has a cost when Redis refuses the RPUSH (at its maxmemory, say): the BLOCKing read
behind it still waits out the whole wait before the error comes back. So after any Redis error the
lane spends CAREFUL_SECONDS pushing first and waiting second: a refused push is answered at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.responses import Response
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from app.holdings import claim_async
from app.queue_client import render_value
from app.schemas import JobStatus
from workers.shared.generate_lane import (
    Answer,
    GenerateCall,
    enqueue,
    job_key,
    read_job,
    record_queued,
    reply_key,
    submit,
)
from workers.shared.job_bodies import lane_job_body

CAREFUL_SECONDS = 60


class GenerateLane:
    """Generate requests on behalf of one client (`principal_id`). A request answered 202 keeps its
    answer in Redis for the result TTL, so it counts against the client's cap (app.holdings)."""

    def __init__(self, redis: AsyncRedis, principal_id: str, max_held_jobs: int):
        self.redis = redis
        self.principal_id = principal_id
        self.max_held_jobs = max_held_jobs

    async def submit(self, call: GenerateCall) -> None:
        """Queue `call` for a 202: 429 if the client's cap is reached."""
        await claim_async(self.redis, self.principal_id, job_key(call.job_id), self.max_held_jobs)
        async with self.redis.pipeline(transaction=False) as pipeline:
            submit(pipeline, call)
            await pipeline.execute()

    async def submit_and_wait(self, call: GenerateCall) -> Answer | None:
        """Queue `call` and wait for its answer in one round trip (the BLPOP is pipelined behind the
        RPUSH): the answer if it comes within `call.wait_seconds` (> 0), else None, with the call then
        recorded as queued for GET /v1/jobs/{id}. Two commands instead of four: each costs the API
        about 20 µs of CPU in redis-py."""
        try:
            popped = await (self._push_then_wait(call) if _careful.now() else self._push_and_wait(call))
        except RedisError:
            _careful.start()
            raise
        if popped:
            return Answer.decode(popped[1])
        async with self.redis.pipeline(transaction=False) as pipeline:
            record_queued(pipeline, call)
            await pipeline.execute()
        # Its answer will be kept for the result TTL now. The request is already queued, so it is
        # counted even past the cap: the cap then refuses the client's next requests.
        await claim_async(self.redis, self.principal_id, job_key(call.job_id), self.max_held_jobs, force=True)
        return None

    async def _push_and_wait(self, call: GenerateCall) -> list[bytes] | None:
        async with self.redis.pipeline(transaction=False) as pipeline:
            enqueue(pipeline, call)
            pipeline.blpop([reply_key(call.job_id)], timeout=call.wait_seconds)
            _, popped = await pipeline.execute()
        return popped

    async def _push_then_wait(self, call: GenerateCall) -> list[bytes] | None:
        async with self.redis.pipeline(transaction=False) as pipeline:
            enqueue(pipeline, call)
            await pipeline.execute()
        return await self.redis.blpop([reply_key(call.job_id)], timeout=call.wait_seconds)


class _Caution:
    """Whether this API process saw the lane's Redis fail within the last CAREFUL_SECONDS."""

    def __init__(self) -> None:
        self._until = 0.0

    def start(self) -> None:
        self._until = time.monotonic() + CAREFUL_SECONDS

    def now(self) -> bool:
        return time.monotonic() < self._until


_careful = _Caution()


def render_answer(answer: Answer, failure_status: int = 500) -> Response:
    """A lane answer as the HTTP answer; a failed request's error comes with `failure_status`."""
    if answer.error is not None:
        raise HTTPException(failure_status, f"the job failed: {answer.error}")
    return render_value(answer.result)


@dataclass(frozen=True)
class LaneJob:
    """A generate request as `/v1/jobs` reports it (app.job_handles): its record in the lane."""

    job_id: str
    record: dict[str, Any]  # workers.generate_lane.read_job's

    @classmethod
    def find(cls, redis: Redis, job_id: str) -> LaneJob | None:
        record = read_job(redis, job_id)
        return cls(job_id, record) if record is not None else None

    def status(self) -> JobStatus:
        answer, record = self.record["answer"], self.record
        error = answer.error if answer else None
        return lane_job_body(self.job_id, record["status"], record["enqueued_at"], record["ended_at"], error)

    def result(self) -> Response:
        if self.record["answer"] is None:
            status = self.record["status"]
            raise HTTPException(409, f"job {self.job_id!r} has not finished (status: {status})")
        return render_answer(self.record["answer"], failure_status=409)
