"""Error answers in FastAPI's own shape, so every 4xx names its field the same way."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def field_error(location: str, field: str, message: str, status: int = 422) -> HTTPException:
    """An error about one request field, laid out like FastAPI's validation errors."""
    return HTTPException(status, [{"loc": [location, field], "msg": message, "type": "value_error"}])


def _non_finite_as_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def json_safe(value: Any) -> Any:
    """`value` (plain JSON-like data) with NaN and ±Infinity replaced by the literals a client sent.

    Python's json parser accepts `NaN`, `Infinity` and `1e309`, so a validation error can carry them as
    its `input`; JSON has no such numbers and Starlette refuses to render them (a 500). Iterative, so an
    input nested as deep as the parser allows cannot exhaust the stack here."""
    root = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        container, key = pending.pop()
        item = container[key]
        if isinstance(item, float) and not math.isfinite(item):
            container[key] = _non_finite_as_text(item)
        elif isinstance(item, dict):
            copy = dict(item)
            container[key] = copy
            pending.extend((copy, name) for name in copy)
        elif isinstance(item, (list, tuple)):
            copy = list(item)
            container[key] = copy
            pending.extend((copy, index) for index in range(len(copy)))
    return root[0]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, except that it cannot fail on a NaN or an infinity in the input.
        return JSONResponse({"detail": json_safe(jsonable_encoder(error.errors()))}, status_code=422)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def redis_unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the job queue (Redis) is unavailable: {error}. Try again shortly."},
            status_code=503,
            headers={"Retry-After": "5"},
        )
