"""Training jobs: start one, follow it (JSON or server-sent events), cancel it, resume it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from redis import Redis
from redis.exceptions import RedisError

from app.dependencies import JobClientDep, RedisDep, SettingsDep, StorageDep, TrainingJobId
from app.errors import field_error
from app.queue_client import fetch_job
from app.responses import LOCATION, error_answer, error_answers
from app.schemas import TrainingJob, TrainingJobList
from app.security import Principal, PrincipalDep
from app.stream_limit import HeldStream
from workers.shared.contract import TrainingSpec
from workers.shared.footprint import DoesNotFit, check_fits, training_footprint
from workers.shared.job_bodies import live_progress, training_job_body
from workers.shared.progress import (
    clear_cancel,
    decode_progress,
    events_channel,
    progress_key,
    read_progress,
    request_cancel,
)
from workers.shared.settings import Settings
from workers.shared.storage import (
    FINISHED_STATUSES,
    ModelManifest,
    Storage,
    model_id_for,
    new_id,
    training_job_id_for,
    utc_now,
)
from workers.shared.webhooks import TrainingWebhook

router = APIRouter(prefix="/v1/training-jobs", tags=["training"])

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
KEEPALIVE_SECONDS = 15


def to_response(manifest: ModelManifest, storage: Storage, redis: Redis) -> TrainingJob:
    return training_job_body(manifest, storage, read_progress(redis, manifest.training_job_id))


def get_training_model(training_job_id: TrainingJobId, storage: StorageDep) -> ModelManifest:
    manifest = storage.read_model(model_id_for(training_job_id))
    if manifest is None:
        raise HTTPException(404, f"training job {training_job_id!r} not found")
    return manifest


TrainingModelDep = Annotated[ModelManifest, Depends(get_training_model)]
NOT_FOUND = error_answer(404, "No such training job.")
FOLLOW = {"description": "The job: follow `Location`.", "headers": LOCATION}


@router.post(
    "",
    status_code=202,
    summary="Start training a model",
    operation_id="training-jobs-start",
    response_model=TrainingJob,
    responses={
        202: FOLLOW,
        **error_answer(404, "No such dataset."),
        **error_answer(409, "A request with this `Idempotency-Key` is still being created: retry shortly."),
        **error_answers(413, 422),
    },
)
def start_training(
    spec: TrainingSpec,
    storage: StorageDep,
    redis: RedisDep,
    jobs: JobClientDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="Retries with the same key create one job.")
    ] = None,
) -> JSONResponse:
    """Answers 202 with the job; `Location` is where to follow it. The model id is in `model_id`."""
    dataset = storage.read_dataset(spec.dataset_id)
    if dataset is None:
        raise HTTPException(404, f"dataset {spec.dataset_id!r} not found")
    if spec.conditional and not dataset.classes:
        raise field_error("body", "conditional", f"dataset {dataset.id!r} has no labels to condition on")

    model_id = new_id("m")
    manifest = ModelManifest(
        id=model_id,
        name=spec.name or f"{dataset.name} {spec.image_size or dataset.image_size}px",
        training_job_id=training_job_id_for(model_id),
        created_at=utc_now(),
        spec=spec,
        dataset_id=dataset.id,
        image_size=spec.image_size or dataset.image_size,
        channels=dataset.channels,
        classes=dataset.classes if spec.conditional else [],
        class_counts=dataset.class_counts if spec.conditional else {},
        owner=principal.id,
    )
    _refuse_unfit(manifest, dataset.count, settings)
    _limit_concurrent_jobs(storage, principal, settings.max_concurrent_jobs)
    if idempotency_key:
        key = f"ganforge:idempotency:{principal.id}:{idempotency_key}"  # each API key has its own
        while not redis.set(key, model_id, nx=True, ex=IDEMPOTENCY_TTL_SECONDS):
            earlier = redis.get(key)
            if earlier is not None:  # else it expired just now: claim it again
                return _existing_for_key(earlier.decode(), spec, storage, redis)

    storage.write_model(manifest)
    try:
        jobs.enqueue_training(model_id, manifest.training_job_id)
    except RedisError:  # Redis down or full: no model is left behind that no job will ever train
        storage.delete_tree(storage.model_dir(model_id))
        if idempotency_key:
            with contextlib.suppress(RedisError):
                redis.delete(f"ganforge:idempotency:{principal.id}:{idempotency_key}")
        raise
    return _accepted(to_response(manifest, storage, redis))


def _refuse_unfit(manifest: ModelManifest, images: int, settings: Settings) -> None:
    """422 with the estimate (workers.shared.footprint) when training would need more memory than a
    worker declares, naming the field behind the largest part."""
    footprint = training_footprint(manifest.network, manifest.spec.batch_size, images)
    try:
        check_fits(footprint, settings.worker_memory_bytes(), "a worker has (GANFORGE_WORKER_MEMORY_MB)")
    except DoesNotFit as error:
        parts = {
            "base_channels": footprint.networks,
            "batch_size": footprint.activations,
            "image_size": footprint.data,
        }
        field = max(parts, key=parts.__getitem__)
        raise field_error("body", field, f"{error}: lower base_channels, batch_size or image_size") from error


def _limit_concurrent_jobs(storage: Storage, principal: Principal, limit: int) -> None:
    """Every client counts, the local one (no keys configured) included."""
    if not limit:
        return
    active = [
        m for m in storage.list_models() if m.owner == principal.id and m.status in ("queued", "running")
    ]
    if len(active) >= limit:
        raise HTTPException(
            429,
            f"this client already has {len(active)} queued or running training jobs (limit {limit}, "
            "GANFORGE_MAX_CONCURRENT_JOBS)",
            {"Retry-After": "60"},
        )


def _existing_for_key(model_id: str, spec: TrainingSpec, storage: Storage, redis: Redis) -> JSONResponse:
    manifest = storage.read_model(model_id)
    if manifest is None:
        raise HTTPException(409, "a request with this Idempotency-Key is still being created; retry shortly")
    if manifest.spec != spec:
        raise HTTPException(422, "this Idempotency-Key was used with a different training spec")
    return _accepted(to_response(manifest, storage, redis))


def _accepted(job: TrainingJob) -> JSONResponse:
    return JSONResponse(job.model_dump(mode="json"), 202, headers={"Location": job.links["self"]})


@router.get("", summary="List training jobs", operation_id="training-jobs-list")
def list_training_jobs(storage: StorageDep, redis: RedisDep) -> TrainingJobList:
    manifests = storage.list_models()
    progress = redis.mget([progress_key(m.training_job_id) for m in manifests]) if manifests else []
    return TrainingJobList(
        training_jobs=[
            training_job_body(manifest, storage, decode_progress(snapshot))
            for manifest, snapshot in zip(manifests, progress, strict=True)
        ]
    )


@router.get(
    "/{training_job_id}",
    summary="Status, step, images/s, ETA and the latest losses",
    operation_id="training-jobs-get",
    responses={**NOT_FOUND, **error_answers(422)},
)
def get_training_job(manifest: TrainingModelDep, storage: StorageDep, redis: RedisDep) -> TrainingJob:
    return to_response(manifest, storage, redis)


@router.get(
    "/{training_job_id}/events",
    summary="Progress as server-sent events",
    operation_id="training-jobs-events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`event: progress` with `data:` lines of progress JSON.",
        },
        **NOT_FOUND,
        **error_answers(422),
    },
)
async def training_events(
    manifest: TrainingModelDep, request: Request, principal: PrincipalDep, settings: SettingsDep
) -> StreamingResponse:
    """One `progress` event now, then one per logging step, until the job finishes. At most
    GANFORGE_MAX_EVENT_STREAMS streams per key are open at once; past that, 429."""
    release = request.app.state.event_streams.take(principal.id, settings.max_event_streams)
    return HeldStream(
        _event_stream(request, manifest),
        release=release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _event_stream(request: Request, manifest: ModelManifest) -> AsyncIterator[str]:
    redis = request.app.state.redis_async
    job_id = manifest.training_job_id
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(events_channel(job_id))
        snapshot = await redis.get(progress_key(job_id))
        current = decode_progress(snapshot)
        if live_progress(current) is None:
            current = {"status": manifest.status, "step": 0}
        yield f"event: progress\ndata: {json.dumps(current)}\n\n"
        if current.get("status") in FINISHED_STATUSES:
            return
        while not await request.is_disconnected():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=KEEPALIVE_SECONDS)
            if message is None:
                yield ": keep-alive\n\n"
                continue
            event = decode_progress(message["data"])
            if event is None:
                continue
            yield f"event: progress\ndata: {json.dumps(event)}\n\n"
            if event.get("status") in FINISHED_STATUSES:
                return
            await asyncio.sleep(0)


@router.post(
    "/{training_job_id}/cancel",
    status_code=202,
    summary="Stop with a checkpoint",
    operation_id="training-jobs-cancel",
    response_model=TrainingJob,
    responses={
        202: FOLLOW,
        **NOT_FOUND,
        **error_answer(409, "The job has finished already."),
        **error_answers(422),
    },
)
def cancel_training(manifest: TrainingModelDep, storage: StorageDep, redis: RedisDep) -> JSONResponse:
    """The worker saves a checkpoint at the current step and stops; `resume` continues from it."""
    if manifest.status in FINISHED_STATUSES:
        raise HTTPException(409, f"training job {manifest.training_job_id!r} is already {manifest.status}")
    request_cancel(redis, manifest.training_job_id)
    job = fetch_job(redis, manifest.training_job_id)
    if job is not None and job.get_status() == "queued":
        job.cancel()
        manifest = storage.update_model(manifest.id, status="canceled", finished_at=utc_now())
        canceled = to_response(manifest, storage, redis)
        # No worker will see this job end: its `completed` webhook is sent from here.
        TrainingWebhook(redis, storage, manifest).send(
            "completed", f"canceled-{canceled.step}", lambda: canceled
        )
        return _accepted(canceled)
    return _accepted(to_response(manifest, storage, redis))


@router.post(
    "/{training_job_id}/resume",
    status_code=202,
    summary="Continue from the newest checkpoint",
    operation_id="training-jobs-resume",
    response_model=TrainingJob,
    responses={
        202: FOLLOW,
        **NOT_FOUND,
        **error_answer(409, "Only a canceled or failed job can be resumed."),
        **error_answers(422),
    },
)
def resume_training(
    manifest: TrainingModelDep, storage: StorageDep, redis: RedisDep, jobs: JobClientDep
) -> JSONResponse:
    """For a canceled or failed job: continues at the newest checkpoint's step, with the same random
    stream, so it ends as an unbroken run would."""
    if manifest.status not in ("canceled", "failed"):
        raise HTTPException(
            409, f"only a canceled or failed job can be resumed; this one is {manifest.status}"
        )
    clear_cancel(redis, manifest.training_job_id)
    manifest = storage.update_model(manifest.id, status="queued", error=None, finished_at=None, recoveries=0)
    jobs.enqueue_training(manifest.id, manifest.training_job_id)
    return _accepted(to_response(manifest, storage, redis))
