"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from rq import Queue, Worker

from app.dependencies import RedisDep, StorageDep
from app.schemas import Health, Readiness
from workers.shared.contract import QUEUES
from workers.shared.feature_network import feature_network_problem
from workers.shared.object_store import StoreUnavailable
from workers.shared.serialization import DataSerializer
from workers.shared.webhooks import WEBHOOK_QUEUE

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The API process is alive", operation_id="health-live")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Redis reachable, a worker on each queue, storage writable",
    operation_id="health-ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the body says what is missing."}},
)
def readyz(redis: RedisDep, storage: StorageDep) -> JSONResponse:
    """200 when ready, else 503 with the same body saying what is missing. `feature_network` says whether
    evaluations can run here (the FID network's file present and intact); generation does not need it."""
    queues = (*QUEUES, WEBHOOK_QUEUE)
    workers = {name: 0 for name in queues}
    try:
        redis.ping()
        redis_state = "ok"
        for name in queues:
            queue = Queue(name, connection=redis, serializer=DataSerializer)
            workers[name] = Worker.count(connection=redis, queue=queue)
    except RedisError as error:
        redis_state = f"unreachable: {error}"
    try:
        storage.store.check()
        storage_state = "ok"
    except StoreUnavailable as error:
        storage_state = str(error)
    ready = redis_state == "ok" and storage_state == "ok" and all(workers.values())
    body = Readiness(
        ready=ready,
        redis=redis_state,
        workers=workers,
        storage=storage_state,
        feature_network=feature_network_problem() or "ok",
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
