"""Error answers in FastAPI's own shape, `{"detail": …}`, so every 4xx names its field the same way,
and a 500 is JSON too."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.http_hygiene import NOSNIFF


def field_error(location: str, field: str, message: str, status: int = 422) -> HTTPException:
    """An error about one request field, laid out like FastAPI's validation errors."""
    return HTTPException(status, [{"loc": [location, field], "msg": message, "type": "value_error"}])


ECHO_LIMIT = 200
"""Characters of the caller's input a validation error echoes back, about."""


def _too_big(value: Any, limit: int) -> bool:
    """Whether `value`, written as JSON, would take more than about `limit` characters. Iterative, and
    stops as soon as it knows, so a huge or deeply nested input costs little."""
    size, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            size += 2 + 2 * len(item)
            if size <= limit:
                pending.extend(item.keys())
                pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            size += 2 + len(item)
            if size <= limit:
                pending.extend(item)
        elif isinstance(item, (str, bytes)):
            size += len(item)
        else:
            size += len(str(item))
        if size > limit:
            return True
    return False


def bounded(value: Any, limit: int = ECHO_LIMIT) -> Any:
    """`value` if it is short; else a short text saying what it was, so an error never echoes back a
    megabyte the caller sent."""
    if not _too_big(value, limit):
        return value
    if isinstance(value, str):
        return f"{value[:limit]}… ({len(value)} characters)"
    if isinstance(value, bytes):
        return f"{value[:limit].decode(errors='replace')}… ({len(value)} bytes)"
    if isinstance(value, dict):
        return f"(an object of {len(value)} fields, too large to echo)"
    if isinstance(value, (list, tuple)):
        return f"(an array of {len(value)} items, too large to echo)"
    return f"(a {type(value).__name__} too large to echo)"


def _bounded_error(error: dict[str, Any]) -> dict[str, Any]:
    """A validation error whose echoed `input` and field path stay short."""
    bounded_error = {**error, "loc": [bounded(part) for part in error.get("loc", ())]}
    if "input" in error:
        bounded_error["input"] = bounded(error["input"])
    return bounded_error


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
        # FastAPI's own handler, except that it echoes only a bounded part of the input and cannot fail
        # on a NaN or an infinity in it.
        # A body that is not JSON at all is a 400 (the request could not be read), not a 422.
        errors = [_bounded_error(item) for item in error.errors()]
        status = 400 if any(item["type"] == "json_invalid" for item in errors) else 422
        return JSONResponse({"detail": json_safe(jsonable_encoder(errors))}, status_code=status)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def redis_unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the job queue (Redis) is unavailable: {error}. Try again shortly."},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        """Starlette answers this outside every middleware, then re-raises the error for the server to
        log with its traceback (uvicorn does); the answer says no more than that it happened."""
        return JSONResponse({"detail": "internal error"}, status_code=500, headers=NOSNIFF)
