"""What routes need, named as `Annotated` aliases so each route's signature says it.

Dependencies on the generate path are `async def`: FastAPI runs a plain `def` dependency in its thread
pool, and each hand-off costs more CPU, and latency, than the work it wraps."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from redis import Redis

from app.lane_client import GenerateLane
from app.queue_client import JobClient
from app.security import PrincipalDep
from workers.shared.contract import ID_PATTERN
from workers.shared.settings import Settings, get_settings
from workers.shared.storage import DatasetManifest, ModelManifest, Storage, open_storage


async def current_settings() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(current_settings)]


async def get_storage(settings: SettingsDep) -> Storage:
    return open_storage(settings)


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


async def get_job_client(request: Request, settings: SettingsDep, principal: PrincipalDep) -> JobClient:
    return JobClient(request.app.state.redis, request.app.state.redis_async, settings, principal.id)


async def get_generate_lane(request: Request, settings: SettingsDep, principal: PrincipalDep) -> GenerateLane:
    return GenerateLane(request.app.state.redis_async, principal.id, settings.max_held_jobs)


StorageDep = Annotated[Storage, Depends(get_storage)]
RedisDep = Annotated[Redis, Depends(get_redis)]
JobClientDep = Annotated[JobClient, Depends(get_job_client)]
GenerateLaneDep = Annotated[GenerateLane, Depends(get_generate_lane)]

DatasetId = Annotated[str, Path(pattern=ID_PATTERN, description="A dataset id, e.g. `digits`.")]
ModelId = Annotated[str, Path(pattern=ID_PATTERN, description="A model id, e.g. `m_1a2b3c4d5e6f`.")]
TrainingJobId = Annotated[str, Path(pattern=r"^tj_[a-z0-9_-]{1,61}$", description="e.g. `tj_1a2b3c4d5e6f`.")]
JobId = Annotated[str, Path(pattern=ID_PATTERN, description="A job id from a 202's `Location`.")]


def get_dataset(dataset_id: DatasetId, storage: StorageDep) -> DatasetManifest:
    manifest = storage.read_dataset(dataset_id)
    if manifest is None:
        raise HTTPException(404, f"dataset {dataset_id!r} not found")
    return manifest


async def get_model(model_id: ModelId, storage: StorageDep) -> ModelManifest:
    """Reads a small manifest file on the event loop: a thread-pool hand-off costs more, up to the
    GIL's 5 ms switch interval in latency when the loop is busy (about 5 ms of 1-client p50 of
    `generate` in bench/serve.py)."""
    manifest = storage.read_model(model_id)
    if manifest is None:
        raise HTTPException(404, f"model {model_id!r} not found")
    return manifest


DatasetDep = Annotated[DatasetManifest, Depends(get_dataset)]
ModelDep = Annotated[ModelManifest, Depends(get_model)]
