"""`GET /metrics`: Prometheus' text format (docs/metrics.md lists every name).

It takes an admin key, or GANFORGE_METRICS_TOKEN: a token that reads the figures and nothing else, so a
Prometheus need not hold an admin key. With no keys configured it is served, like every route, only to
clients on this machine (app.locality). It is left out of the OpenAPI document: it is for Prometheus,
not for the apps the document describes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.security import authenticate, bearer
from workers.shared.settings import get_settings

router = APIRouter()


def is_metrics_token(presented: str, token: str) -> bool:
    """Whether `presented` is the configured token, compared in constant time (as digests, so neither
    length shows)."""
    presented_digest = hashlib.sha256(presented.encode()).digest()
    return bool(token) and hmac.compare_digest(presented_digest, hashlib.sha256(token.encode()).digest())


async def metrics_reader(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """The metrics token, or else what an admin route takes (401 without a valid key, 403 for a user key)."""
    if credentials is not None and is_metrics_token(credentials.credentials, get_settings().metrics_token):
        return
    principal = await authenticate(request, credentials)
    if principal.role != "admin":
        raise HTTPException(403, "/metrics needs an admin key or the metrics token (GANFORGE_METRICS_TOKEN)")


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_reader)])
def metrics(request: Request) -> Response:
    """A plain `def`: the fleet's figures are read from Redis with the blocking client, in the thread pool."""
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
