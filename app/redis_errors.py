"""How the API answers when Redis refuses work or holds what ganforge did not write there.

- Redis at its memory limit (`maxmemory` with `noeviction`) refuses writes with OOM: new work gets 503
  with `Retry-After`, and nothing already queued is evicted to make room.
- A job record, result or generate answer that is not ganforge's data (a pickle written by whoever can
  reach Redis, say) is never executed (workers.serialization reads data only): the request gets 502
  saying so, and the rest of the service goes on.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import OutOfMemoryError
from rq.exceptions import DeserializationError

from workers.shared.serialization import UnreadableData

log = logging.getLogger("ganforge.api")

FULL_RETRY_AFTER_SECONDS = 30


def install_redis_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OutOfMemoryError)
    async def redis_full(request: Request, error: OutOfMemoryError) -> JSONResponse:
        log.warning("Redis refused a write at its memory limit: %s", error)
        return JSONResponse(
            {
                "detail": "the job queue (Redis) is full (its maxmemory is reached): no new work is "
                "queued until queued jobs finish and kept results expire. Try again later."
            },
            status_code=503,
            headers={"Retry-After": str(FULL_RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(UnreadableData)
    @app.exception_handler(DeserializationError)
    async def unreadable(request: Request, error: Exception) -> JSONResponse:
        log.error("refused data in Redis that ganforge did not write (%s): %s", request.url.path, error)
        return JSONResponse(
            {"detail": "the job's record in Redis is not data ganforge wrote; it was refused unread"},
            status_code=502,
        )
