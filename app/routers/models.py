"""Models: the registry of trained generators, their progress pictures and checkpoints, and generation."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path
from fastapi.responses import FileResponse, Response

from app.dependencies import GenerateLaneDep, ModelDep, SettingsDep, StorageDep
from app.errors import field_error
from app.lane_client import render_answer
from app.model_inputs import checked_labels, checkpoint_step
from app.pictures import PNG_OR_JSON, PictureForm, PictureFormat, png_answer, png_file_answer
from app.queue_client import accepted, wants_async
from app.responses import (
    BINARY,
    CHECKPOINT,
    NO_CHECKPOINT,
    STILL_RENDERING,
    error_answer,
    error_answers,
    header,
    picture,
)
from app.schemas import Evaluation, GeneratedImages, Model, ModelList, ModelMetrics
from app.security import AdminOnly
from workers.shared.contract import MAX_SEED, GenerateRequest
from workers.shared.generate_lane import GenerateCall, new_job_id
from workers.shared.plots import loss_curve_png
from workers.shared.storage import ModelManifest, Storage

router = APIRouter(prefix="/v1/models", tags=["models"])

Step = Annotated[int, Path(ge=0, le=10_000_000, description="A training step.")]

PreferHeader = Annotated[
    str | None, Header(description="`respond-async`: answer 202 at once instead of waiting for the result.")
]


def to_response(manifest: ModelManifest, storage: Storage) -> Model:
    evaluations = storage.evaluations(manifest.id)
    best = storage.best_evaluation(manifest.id)
    newest = max(evaluations, key=lambda row: (row["step"], row["created_at"]), default=None)
    return Model(
        id=manifest.id,
        name=manifest.name,
        status=manifest.status,
        created_at=manifest.created_at,
        dataset_id=manifest.dataset_id,
        image_size=manifest.image_size,
        channels=manifest.channels,
        latent_dim=manifest.spec.latent_dim,
        conditional=manifest.conditional,
        labels=manifest.classes,
        label_counts=manifest.class_counts,
        supports_transform=manifest.conditional,
        has_encoder=storage.has_encoder(manifest.id),
        checkpoints=storage.checkpoint_steps(manifest.id),
        samples=storage.sample_steps(manifest.id),
        latest_metrics=storage.last_metrics(manifest.id),
        latest_evaluation=Evaluation(**newest) if newest else None,
        best_checkpoint=best["step"] if best else None,
        training_job_id=manifest.training_job_id,
        spec=manifest.spec,
        links={
            "self": f"/v1/models/{manifest.id}",
            "training_job": f"/v1/training-jobs/{manifest.training_job_id}",
            "generate": f"/v1/models/{manifest.id}/generate",
            "metrics": f"/v1/models/{manifest.id}/metrics",
            "losses": f"/v1/models/{manifest.id}/losses.png",
            "evaluations": f"/v1/models/{manifest.id}/evaluations",
            "quality": f"/v1/models/{manifest.id}/quality.png",
        },
    )


@router.get("", summary="List models", operation_id="models-list")
def list_models(storage: StorageDep) -> ModelList:
    return ModelList(models=[to_response(manifest, storage) for manifest in storage.list_models()])


@router.get(
    "/{model_id}",
    summary="A model's spec, labels, checkpoints and latest figures",
    operation_id="models-get",
    responses=error_answers(404, 422),
)
def get_model(model: ModelDep, storage: StorageDep) -> Model:
    return to_response(model, storage)


@router.delete(
    "/{model_id}",
    status_code=204,
    summary="Delete a model and its files",
    operation_id="models-delete",
    dependencies=[AdminOnly],
    responses={
        **error_answers(404, 422),
        **error_answer(409, "The model is still training: cancel its job first."),
    },
)
def delete_model(model: ModelDep, storage: StorageDep) -> None:
    """Refused (409) while its training job is queued or running: cancel it first."""
    if model.status in ("queued", "running"):
        raise HTTPException(
            409, f"model {model.id!r} is still training; cancel {model.training_job_id} first"
        )
    storage.delete_tree(storage.model_dir(model.id))


@router.get(
    "/{model_id}/samples/{step}.png",
    summary="The progress grid at a step (fixed latents)",
    operation_id="models-sample-grid",
    response_class=Response,
    responses={**PNG_OR_JSON, **error_answers(404, 422)},
)
def sample_grid(
    model: ModelDep, step: Step, storage: StorageDep, format: PictureFormat = PictureForm.png
) -> Response:
    path = storage.sample_file(model.id, step)
    if not storage.fetch(path):
        raise HTTPException(404, f"model {model.id!r} has no sample grid at step {step}")
    return png_file_answer(path, format)


@router.get(
    "/{model_id}/metrics",
    summary="Losses, D(x), D(G(z)) and images/s per logging step",
    operation_id="models-metrics",
    responses=error_answers(404, 422),
)
def metrics(model: ModelDep, storage: StorageDep) -> ModelMetrics:
    return ModelMetrics(metrics=storage.metrics(model.id))


@router.get(
    "/{model_id}/losses.png",
    summary="Loss curves so far",
    operation_id="models-losses",
    response_class=Response,
    responses={**PNG_OR_JSON, **error_answers(404, 422)},
)
def loss_curves(model: ModelDep, storage: StorageDep, format: PictureFormat = PictureForm.png) -> Response:
    return png_answer(loss_curve_png(storage.metrics(model.id)), format)


@router.get(
    "/{model_id}/checkpoints/{step}",
    summary="Download a checkpoint (torch.save of G, D, G-EMA, optimisers, step, RNG)",
    operation_id="models-checkpoint",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": BINARY}},
            "description": "The checkpoint file.",
            "headers": {"Content-Disposition": header("`attachment`, with a file name.")},
        },
        **error_answers(404, 422),
    },
)
def download_checkpoint(model: ModelDep, step: Step, storage: StorageDep) -> FileResponse:
    path = storage.checkpoint_file(model.id, step)
    if not storage.fetch(path):
        raise HTTPException(404, f"model {model.id!r} has no checkpoint at step {step}")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{model.id}-{path.name}")


@router.post(
    "/{model_id}/generate",
    summary="Generate images (PNG, a grid when n > 1, or JSON with base64 PNGs)",
    operation_id="models-generate",
    response_class=Response,
    responses={
        **picture(
            GeneratedImages,
            "`format: png` gives one PNG (a grid when n > 1); `format: json` gives base64 PNGs with their "
            "seeds.",
            headers={
                "X-Seeds": header("The seeds used, comma-separated, in order."),
                **CHECKPOINT,
                "X-Batch-Images": header("Images rendered in the same forward pass.", "integer"),
            },
        ),
        **STILL_RENDERING,
        **error_answers(413, 422, 500, 502),
        **error_answer(404, "No such model, or no checkpoint at that step."),
        **NO_CHECKPOINT,
    },
)
async def generate(
    model: ModelDep,
    request: GenerateRequest,
    storage: StorageDep,
    lane: GenerateLaneDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
) -> Response:
    """Batched with other requests on the sampling worker. Waits for the images up to a bound
    (GANFORGE_SYNC_WAIT_SECONDS), then answers 202 with `Location: /v1/jobs/{id}`. Response headers
    `X-Seeds` and `X-Checkpoint` say what was used, `X-Batch-Images` how many images shared the forward
    pass."""
    call = GenerateCall(
        job_id=new_job_id(),
        model_id=model.id,
        seeds=_seeds(request),
        labels=_labels(model, request),
        truncation=request.truncation,
        checkpoint=checkpoint_step(model, request.checkpoint, storage),
        format=request.format,
        result_ttl=settings.result_ttl_seconds,
        wait_seconds=0 if wants_async(prefer) else settings.sync_wait_seconds,
        webhook=request.webhook if "completed" in request.webhook_events_filter else None,
    )
    location = f"/v1/jobs/{call.job_id}"
    if call.wait_seconds <= 0:  # Prefer: respond-async, or GANFORGE_SYNC_WAIT_SECONDS=0
        await lane.submit(call)
        return accepted(call.job_id, location)
    answer = await lane.submit_and_wait(call)
    if answer is None:
        return accepted(call.job_id, location)
    return render_answer(answer)


def _seeds(request: GenerateRequest) -> list[int]:
    if request.seeds is not None:
        return request.seeds
    first = request.seed if request.seed is not None else secrets.randbelow(2**31)
    if first + request.count - 1 > MAX_SEED:
        raise field_error("body", "seed", f"seed + n − 1 must stay ≤ {MAX_SEED}")
    return list(range(first, first + request.count))


def _labels(model: ModelManifest, request: GenerateRequest) -> list[str] | None:
    """Each image's class. A conditional model with no label given cycles through its classes."""
    if model.conditional and request.label is None and request.labels is None:
        return [model.classes[index % len(model.classes)] for index in range(request.count)]
    if request.labels is not None:
        return checked_labels(model, request.labels, "labels")
    return checked_labels(
        model, [request.label] * request.count if request.label is not None else None, "label"
    )
