"""What operations answer besides their success, for the OpenAPI document: error statuses with the
one error body (`ErrorDetail`), 202s with their `Location`, pictures with their media types beside
their JSON form, and the headers that come with each. Routes spread these into `responses=`;
app.main adds KEYED to every route behind an API key."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from app.schemas import Accepted, ErrorDetail

Responses = dict[int | str, dict[str, Any]]

BINARY = {"type": "string", "format": "binary"}


def header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


LOCATION = {"Location": header("Where to follow the job: `GET` it.")}
RETRY_AFTER = {"Retry-After": header("Seconds to wait before trying again.", "integer")}
CHECKPOINT = {"X-Checkpoint": header("The step of the checkpoint used.", "integer")}

ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The body could not be parsed: not JSON, or a broken multipart form.", {}),
    401: (
        "No API key, or not a valid one (when keys are configured).",
        {"WWW-Authenticate": header("`Bearer`.")},
    ),
    403: (
        "Refused: the route needs an admin key; or, with no keys configured, the client is not on this "
        "machine; or a web page of another site tried to change something.",
        {},
    ),
    404: ("No such resource: the `detail` names it.", {}),
    409: ("The resource is not in a state that allows this: the `detail` says why.", {}),
    413: ("The body, or the image or archive in it, is larger than its limit.", {}),
    422: ("A field is invalid: `detail` lists each field at fault.", {}),
    429: (
        "Over a per-client limit: requests per minute, queued jobs and kept results, open event "
        "streams, concurrent training jobs.",
        RETRY_AFTER,
    ),
    500: ("The job failed, or an unexpected error (its traceback goes to the log).", {}),
    502: ("A record in Redis is not data ganforge wrote: it was refused unread.", {}),
    503: ("The job queue (Redis) is unavailable or full.", RETRY_AFTER),
}


def error_answer(status: int, description: str | None = None) -> Responses:
    """One error status with the error body and its headers; `description` says what it means here."""
    default, headers = ERRORS[status]
    answer: dict[str, Any] = {"model": ErrorDetail, "description": description or default}
    if headers:
        answer["headers"] = headers
    return {status: answer}


def error_answers(*statuses: int) -> Responses:
    return {status: answer for code in statuses for status, answer in error_answer(code).items()}


KEYED = error_answers(401, 403, 429, 503)
"""What any route behind an API key can answer: app.security, app.locality, app.same_origin, and
Redis (which counts each key's requests) being down or full."""


def accepted_response(description: str = "Still running: follow `Location`.") -> Responses:
    """The 202 of work that goes on after the answer, with the `Accepted` body."""
    return {202: {"model": Accepted, "description": description, "headers": LOCATION}}


STILL_RENDERING = accepted_response(
    "Still rendering after the wait, or `Prefer: respond-async`: follow `Location`."
)
NO_CHECKPOINT = error_answer(
    409, 'The model has no checkpoint yet, or none evaluated for `"checkpoint": "best"`.'
)
"""What app.model_inputs.checkpoint_step refuses with, besides a 404 for a step the model lacks."""


def picture(
    body: type[BaseModel] | Any,
    description: str,
    media_types: tuple[str, ...] = ("image/png",),
    headers: dict[str, Any] | None = None,
) -> Responses:
    """A 200 that is a picture in `media_types`, or the JSON document `body` (`format: json`)."""
    answer: dict[str, Any] = {
        "model": body,
        "description": description,
        "content": {media_type: {"schema": BINARY} for media_type in media_types},
    }
    if headers:
        answer["headers"] = headers
    return {200: answer}


def document_parse_errors(app: FastAPI) -> None:
    """Every operation that reads a JSON body can answer 400 when the body is not JSON (app.errors): say
    so in the OpenAPI document, once, here, rather than in every router."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            answer = {
                "description": "The body is not JSON.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}},
            }
            for operations in generate()["paths"].values():
                for operation in operations.values():
                    if "application/json" in operation.get("requestBody", {}).get("content", {}):
                        operation["responses"].setdefault("400", answer)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
