"""The ganforge API: `uvicorn app.main:app`. This module only assembles the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from app import __version__
from app.body_limit import BodySizeLimit
from app.errors import install_error_handlers
from app.fleet_collector import FleetCollector
from app.http_hygiene import HeadAsGet, NoSniff
from app.http_metrics import HttpFigures, HttpMetrics
from app.locality import LocalOnly
from app.redis_errors import install_redis_error_handlers
from app.responses import KEYED, document_parse_errors
from app.routers import (
    datasets,
    evaluations,
    exports,
    health,
    jobs,
    latents,
    metrics,
    models,
    studio,
    training_jobs,
    webhook_deliveries,
)
from app.same_origin import SameOrigin
from app.security import AdminOnly, AnyKey, parse_keys
from app.store_errors import install_store_error_handlers
from app.stream_limit import StreamSlots
from workers.shared.datasets.store import ensure_builtin_datasets
from workers.shared.object_store import StoreMisconfigured, StoreUnavailable
from workers.shared.settings import get_settings
from workers.shared.storage import open_storage

DESCRIPTION = """
Train GANs with one `curl` and generate from them over HTTP.

Upload an archive of images (`POST /v1/datasets`, or use the built-in `digits`), start a training job
(`POST /v1/training-jobs`), follow it (`GET /v1/training-jobs/{id}` or its `/events` stream), then
generate (`POST /v1/models/{id}/generate`). Long work answers `202 Accepted` with a `Location`.
"""

TAGS = [
    {"name": "health", "description": "Liveness, and readiness: Redis and the workers of each queue."},
    {"name": "datasets", "description": "Image archives to train on, and the built-in ones."},
    {"name": "training", "description": "Start, follow, cancel and resume training jobs."},
    {"name": "models", "description": "Trained models, their checkpoints and samples; generate images."},
    {
        "name": "quality",
        "description": "Evaluate checkpoints: FID, KID, precision/recall; the best checkpoint.",
    },
    {
        "name": "export",
        "description": "A checkpoint's generator as an ONNX or TorchScript file that runs without ganforge.",
    },
    {"name": "latent space", "description": "Interpolate, do latent arithmetic, invert images, transform."},
    {"name": "jobs", "description": "Long work that answered 202: its status and its result."},
    {"name": "webhooks", "description": "Signed POSTs of jobs' events: deliveries, attempts, redelivery."},
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    if not parse_keys(settings.api_keys):
        logging.getLogger("ganforge.api").warning(
            "no API keys configured (GANFORGE_API_KEYS): answering only clients on this machine that "
            "address it as localhost, 127.0.0.1 or [::1], with no proxy headers"
        )
    timeout = settings.redis_timeout_seconds
    app.state.redis = Redis.from_url(
        settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    # Requests wait for their results here (BLPOP, XREAD BLOCK) for up to the sync wait, so its reads
    # may take that long: redis-py 8 would give up on any read after 5 s.
    app.state.redis_async = AsyncRedis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=settings.sync_wait_seconds + timeout,
    )
    try:
        ensure_builtin_datasets(open_storage(settings))
    except StoreMisconfigured:
        raise  # a missing bucket: say so at start
    except StoreUnavailable as error:
        logging.getLogger("ganforge.api").warning("%s: the built-in datasets wait for the next start", error)
    yield
    app.state.redis.close()
    await app.state.redis_async.aclose()


def create_app() -> FastAPI:
    app = FastAPIOffline(
        title="ganforge", version=__version__, description=DESCRIPTION, openapi_tags=TAGS, lifespan=lifespan
    )
    # Outermost last: every answer gets nosniff; strangers and other sites' pages are refused before
    # anything else runs; HEAD becomes GET for the routes; bodies are cut off at their limit.
    app.add_middleware(BodySizeLimit, upload_limit=get_settings().max_upload_bytes)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SameOrigin)
    app.add_middleware(LocalOnly, open_paths=[route.path for route in health.router.routes])
    app.add_middleware(NoSniff)
    # /metrics (docs/metrics.md): this app's HTTP figures, outermost so that refusals count too, and the
    # fleet's, read from Redis at each scrape.
    app.state.metrics_registry = CollectorRegistry()
    app.state.metrics_registry.register(FleetCollector(lambda: app.state.redis))
    app.add_middleware(HttpMetrics, figures=HttpFigures(app.state.metrics_registry))
    app.state.event_streams = StreamSlots()
    install_error_handlers(app)
    install_redis_error_handlers(app)
    install_store_error_handlers(app)
    # Requests are matched against routes in the order they were included: models (generate, the hot
    # path) first; about a tenth of the API's CPU per generate request went to matching it last.
    # The docs order their sections by TAGS.
    app.include_router(models.router, dependencies=[AnyKey], responses=KEYED)
    app.include_router(health.router)
    app.include_router(datasets.router, dependencies=[AdminOnly], responses=KEYED)
    app.include_router(training_jobs.router, dependencies=[AdminOnly], responses=KEYED)
    app.include_router(latents.router, dependencies=[AnyKey], responses=KEYED)
    app.include_router(evaluations.router, dependencies=[AnyKey], responses=KEYED)
    # Any key: an export is the model in another format, and any key may download its checkpoints.
    app.include_router(exports.router, dependencies=[AnyKey], responses=KEYED)
    app.include_router(jobs.router, dependencies=[AnyKey], responses=KEYED)
    app.include_router(webhook_deliveries.router, responses=KEYED)  # keys per route (docs/webhooks.md)
    app.include_router(studio.router)  # the page, `/` → /studio, and /v1/whoami (docs/studio.md)
    app.include_router(metrics.router)  # its own access check: an admin key or the metrics token
    document_parse_errors(app)
    return app


app = create_app()
