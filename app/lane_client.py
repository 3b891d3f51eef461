"""Submitting generate requests to the generate lane (workers.generate_lane) and waiting for their
answers, on the asyncio Redis client: the wait holds no thread, and costs one blocking read (BLPOP)."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import Response
from redis.asyncio import Redis as AsyncRedis

from app.queue_client import render_value
from workers.generate_lane import Answer, GenerateCall, reply_key, submit
from workers.settings import Settings


class GenerateLane:
    def __init__(self, redis: AsyncRedis, settings: Settings):
        self.redis = redis
        self.settings = settings

    async def submit(self, call: GenerateCall) -> None:
        async with self.redis.pipeline(transaction=False) as pipeline:
            submit(pipeline, call)
            await pipeline.execute()

    async def wait(self, job_id: str) -> Answer | None:
        """The answer if it comes within GANFORGE_SYNC_WAIT_SECONDS, else None."""
        seconds = self.settings.sync_wait_seconds
        if seconds <= 0:
            return None
        popped = await self.redis.blpop([reply_key(job_id)], timeout=seconds)
        return Answer.decode(popped[1]) if popped else None


def render_answer(answer: Answer, failure_status: int = 500) -> Response:
    """A lane answer as the HTTP answer; a failed request's error comes with `failure_status`."""
    if answer.error is not None:
        raise HTTPException(failure_status, f"the job failed: {answer.error}")
    return render_value(answer.result)
