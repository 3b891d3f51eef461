"""Error answers in FastAPI's own shape, so every 4xx names its field the same way."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def field_error(location: str, field: str, message: str, status: int = 422) -> HTTPException:
    """An error about one request field, laid out like FastAPI's validation errors."""
    return HTTPException(status, [{"loc": [location, field], "msg": message, "type": "value_error"}])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def redis_unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the job queue (Redis) is unavailable: {error}. Try again shortly."},
            status_code=503,
            headers={"Retry-After": "5"},
        )
