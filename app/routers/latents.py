"""The latent space of a model: named latents, interpolation, arithmetic and inversion. The work runs on
the sampling queue like generation; names and inputs are checked here first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Response, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.dependencies import JobClientDep, ModelDep, SettingsDep, StorageDep
from app.errors import field_error
from app.forms import InvertRequest, Multipart, TransformRequest
from app.model_inputs import checked_labels, checkpoint_step, latent_definition, named_latents, required_label
from app.responses import (
    CHECKPOINT,
    NO_CHECKPOINT,
    STILL_RENDERING,
    Responses,
    error_answer,
    error_answers,
    header,
    picture,
)
from app.routers.models import PreferHeader
from app.schemas import (
    ArithmeticResult,
    InterpolationFrames,
    Inversion,
    NamedLatentList,
    Transformation,
)
from workers.shared.budgets import check_frames, check_optimisation
from workers.shared.contract import (
    ARITHMETIC_JOB,
    INTERPOLATE_JOB,
    INVERT_JOB,
    LATENT_NAME_PATTERN,
    TRANSFORM_JOB,
    ArithmeticRequest,
    InterpolateRequest,
    SaveLatentRequest,
    SeedLatent,
    SeedsLatent,
    VectorLatent,
)
from workers.shared.datasets.errors import DatasetError
from workers.shared.datasets.images import decode_image
from workers.shared.expressions import ExpressionError, parse_expression
from workers.shared.settings import Settings
from workers.shared.storage import ModelManifest, NamedLatentRecord, Storage, utc_now

router = APIRouter(prefix="/v1/models/{model_id}", tags=["latent space"])

LatentName = Annotated[str, Path(pattern=LATENT_NAME_PATTERN, description="`[a-z0-9_]{1,64}`")]
MAX_IMAGE_UPLOAD = 16 * 2**20
NOT_FOUND = error_answer(404, "No such model, or no named latent of that name.")
MSE = {"X-Reconstruction-MSE": header("The inversion's reconstruction error.", "number")}


def _sampling_answers(
    body: type[BaseModel], description: str, headers: dict[str, Any], gif: bool = False
) -> Responses:
    """What a latent-space job's route answers: its picture or JSON, 202 after the wait, its errors."""
    media_types = ("image/png", "image/gif") if gif else ("image/png",)
    return {
        **picture(body, description, media_types, {**CHECKPOINT, **headers}),
        **STILL_RENDERING,
        **error_answer(404, "No such model, named latent or checkpoint."),
        **NO_CHECKPOINT,
        **error_answers(413, 422, 500, 502),
    }


@router.post(
    "/latents",
    status_code=201,
    summary="Save a named latent",
    operation_id="latents-save",
    responses={
        **NOT_FOUND,
        **error_answer(409, "The model has a latent of that name already."),
        **error_answers(413, 422),
    },
)
def save_latent(model: ModelDep, request: SaveLatentRequest, storage: StorageDep) -> NamedLatentRecord:
    """From a seed, the mean of seeds, a vector, or another name (copied). 409 if the name is taken."""
    _refuse_taken_name(model, request.name, storage, "delete it first")
    source = {SeedLatent: "seed", SeedsLatent: "seeds", VectorLatent: "vector"}.get(
        type(request.latent), "name"
    )
    record = NamedLatentRecord(
        name=request.name,
        latent=latent_definition(model, request.latent, storage, "latent"),
        source=source,
        created_at=utc_now(),
    )
    storage.write_latent(model.id, record)
    return record


def _refuse_taken_name(model: ModelManifest, name: str, storage: Storage, remedy: str) -> None:
    if storage.read_latent(model.id, name) is not None:
        raise HTTPException(409, f"model {model.id!r} already has a latent named {name!r}; {remedy}")


def _check_save_as(model: ModelManifest, save_as: str | None, replace: bool, storage: Storage) -> None:
    """Saving over a name is what `replace` says, as with POST /latents (which never replaces)."""
    if save_as and not replace:
        _refuse_taken_name(model, save_as, storage, "delete it first, or send replace=true")


@contextlib.contextmanager
def _within_budget(field: str) -> Iterator[None]:
    """A workers.shared.budgets check's ValueError as a 422 naming `field`."""
    try:
        yield
    except ValueError as error:
        raise field_error("body", field, str(error)) from error


@router.get(
    "/latents",
    summary="List named latents",
    operation_id="latents-list",
    responses={**error_answer(404, "No such model."), **error_answers(422)},
)
def list_latents(model: ModelDep, storage: StorageDep) -> NamedLatentList:
    return NamedLatentList(latents=storage.list_latents(model.id))


@router.get(
    "/latents/{name}",
    summary="A named latent",
    operation_id="latents-get",
    responses={**NOT_FOUND, **error_answers(422)},
)
def get_latent(model: ModelDep, name: LatentName, storage: StorageDep) -> NamedLatentRecord:
    record = storage.read_latent(model.id, name)
    if record is None:
        raise HTTPException(404, f"model {model.id!r} has no named latent {name!r}")
    return record


@router.delete(
    "/latents/{name}",
    status_code=204,
    summary="Delete a named latent",
    operation_id="latents-delete",
    responses={**NOT_FOUND, **error_answers(422)},
)
def delete_latent(model: ModelDep, name: LatentName, storage: StorageDep) -> None:
    if not storage.delete_latent(model.id, name):
        raise HTTPException(404, f"model {model.id!r} has no named latent {name!r}")


@router.post(
    "/interpolate",
    summary="Walk between latents: a PNG strip, a looping GIF, or JSON",
    operation_id="latents-interpolate",
    response_class=Response,
    responses=_sampling_answers(
        InterpolationFrames,
        "`format`: png, a strip of the frames; gif, looping; json, each frame with its latent.",
        {"X-Frames": header("Frames rendered.", "integer")},
        gif=True,
    ),
)
async def interpolate(
    model: ModelDep,
    request: InterpolateRequest,
    storage: StorageDep,
    jobs: JobClientDep,
    prefer: PreferHeader = None,
) -> Response:
    """`steps` frames between each pair of neighbouring key latents (slerp or lerp); the keys themselves
    are frames too. A conditional model takes one `label` for every frame, or `labels`, one per key,
    to walk the condition as well (a class-to-class morph with z fixed)."""
    keys = [latent_definition(model, ref, storage, "latents") for ref in request.latents]
    if request.labels is not None:
        labels = checked_labels(model, request.labels, "labels")
    else:
        label = required_label(model, request.label, "label")
        labels = [label] if label is not None else None
    job = await jobs.enqueue_sampling(
        INTERPOLATE_JOB,
        webhook=request,
        model_id=model.id,
        checkpoint=checkpoint_step(model, request.checkpoint, storage),
        keys=keys,
        steps=request.steps,
        method=request.method,
        labels=labels,
        interpolate_labels=request.labels is not None,
        truncation=request.truncation,
        format=request.format,
    )
    return await jobs.answer(job, prefer)


@router.post(
    "/arithmetic",
    summary="Latent vector arithmetic, with variations around the result",
    operation_id="latents-arithmetic",
    response_class=Response,
    responses=_sampling_answers(
        ArithmeticResult,
        "`format`: png, the result (with its variations around it); json, the result's latent too.",
        {"X-Images": header("Images rendered: the result and its variations.", "integer")},
    ),
)
async def arithmetic(
    model: ModelDep,
    request: ArithmeticRequest,
    storage: StorageDep,
    jobs: JobClientDep,
    prefer: PreferHeader = None,
) -> Response:
    """As in the DCGAN paper: average a few exemplars per concept (`{"seeds": [...]}` or a named latent
    saved from them), then e.g. `smiling_woman - neutral_woman + neutral_man`. `format: json` gives
    the result's latent, to save as a named latent."""
    if request.expression is not None:
        terms = _expression_terms(model, request.expression, storage)
    else:
        terms = [
            (term.weight, latent_definition(model, term.latent, storage, "terms"))
            for term in request.terms or []
        ]
    job = await jobs.enqueue_sampling(
        ARITHMETIC_JOB,
        webhook=request,
        model_id=model.id,
        checkpoint=checkpoint_step(model, request.checkpoint, storage),
        terms=terms,
        variations=request.variations,
        noise=request.noise,
        seed=request.seed,
        label=required_label(model, request.label, "label"),
        truncation=request.truncation,
        format=request.format,
    )
    return await jobs.answer(job, prefer)


def _expression_terms(model: ModelManifest, expression: str, storage: Storage) -> list[tuple[float, dict]]:
    try:
        parsed = parse_expression(expression)
    except ExpressionError as error:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "expression"],
                    "msg": f"{error} (at character {error.position})",
                    "type": "value_error",
                    "ctx": {"position": error.position},
                }
            ],
        ) from error
    definitions = named_latents(model, [name for _, name in parsed], storage)
    return [(weight, definitions[name]) for weight, name in parsed]


@router.post(
    "/invert",
    summary="Find the latent of an image (encoder start, then optimisation)",
    operation_id="latents-invert",
    response_class=Response,
    responses={
        **_sampling_answers(
            Inversion,
            "`format`: json, the latent, the reconstruction and its error; png, the input beside the "
            "reconstruction.",
            MSE,
        ),
        **error_answers(400),
        **error_answer(409, "No checkpoint yet, or `save_as` names a latent the model has already."),
    },
)
async def invert(
    model: ModelDep,
    form: Annotated[InvertRequest, Multipart],
    storage: StorageDep,
    settings: SettingsDep,
    jobs: JobClientDep,
    prefer: PreferHeader = None,
) -> Response:
    """Returns the latent, the reconstruction and its mean squared error on [-1, 1] pixels. Steps ×
    the model's pixels are capped per request (docs/api.md)."""
    with _within_budget("steps"):
        check_optimisation(form.steps, model.image_size)
    _check_save_as(model, form.save_as, form.replace, storage)
    prepared = await _prepared_image(form.image, model, settings)
    job = await jobs.enqueue_sampling(
        INVERT_JOB,
        webhook=form.webhook_fields(),
        model_id=model.id,
        checkpoint=checkpoint_step(model, form.checkpoint, storage),
        image=prepared,
        label=required_label(model, form.label, "label"),
        steps=form.steps,
        save_as=form.save_as,
        format=form.format,
    )
    return await jobs.answer(job, prefer)


async def _prepared_image(image: UploadFile, model: ModelManifest, settings: Settings) -> np.ndarray:
    """Decoding is CPU work: in the thread pool, off the event loop."""
    data = await image.read(MAX_IMAGE_UPLOAD + 1)
    return await run_in_threadpool(prepare_image, data, model, settings)


def prepare_image(data: bytes, model: ModelManifest, settings: Settings) -> np.ndarray:
    """The upload decoded and prepared as the model's training images were, or a 4xx naming `image`."""
    if len(data) > MAX_IMAGE_UPLOAD:
        raise field_error("body", "image", f"the image is larger than {MAX_IMAGE_UPLOAD} bytes", 413)
    try:
        return decode_image(data, model.image_size, model.channels, settings.max_image_pixels)
    except DatasetError as error:
        raise field_error("body", "image", error.reason, error.status) from error


@router.post(
    "/transform",
    summary="Re-render a face (or any image) at other labels: face-aging style",
    operation_id="latents-transform",
    response_class=Response,
    responses={
        **_sampling_answers(
            Transformation,
            "`format`: png, a captioned strip; json, the latent and an image per target label; gif, "
            "the sequence, looping.",
            {**MSE, "X-Targets": header("The target labels, comma-separated and percent-encoded.")},
            gif=True,
        ),
        **error_answers(400),
        **error_answer(409, "No checkpoint yet, or `save_as` names a latent the model has already."),
    },
)
async def transform(
    model: ModelDep,
    form: Annotated[TransformRequest, Multipart],
    storage: StorageDep,
    settings: SettingsDep,
    jobs: JobClientDep,
    prefer: PreferHeader = None,
) -> Response:
    """Age-cGAN (Antipov et al. 2017): invert the image with its source label (encoder start, then an
    optimisation keeping pixels and discriminator features close), keep z, swap the label. `png`: one
    captioned strip — input, reconstruction at the source label, then each target; `json`: base64
    images and the latent; `gif`: the sequence, looping."""
    if not model.conditional:
        raise HTTPException(422, f"transform needs a conditional model; {model.id!r} is unconditional")
    if (form.image is None) == (form.latent is None):
        raise field_error("body", "image", "give exactly one of `image` or `latent`")
    targets = (
        [label.strip() for label in form.target_labels.split(",")]
        if form.target_labels
        else list(model.classes)
    )
    with _within_budget("target_labels"):
        check_frames(len(targets), form.steps_between, "target_labels", "steps_between")
    if form.image is not None:
        with _within_budget("optimise_steps"):
            check_optimisation(form.optimise_steps, model.image_size)
    _check_save_as(model, form.save_as, form.replace, storage)
    checkpoint = checkpoint_step(model, form.checkpoint, storage)
    image = await _prepared_image(form.image, model, settings) if form.image is not None else None
    job = await jobs.enqueue_sampling(
        TRANSFORM_JOB,
        webhook=form.webhook_fields(),
        model_id=model.id,
        checkpoint=checkpoint,
        image=image,
        latent=named_latents(model, [form.latent], storage)[form.latent] if form.latent else None,
        source_label=checked_labels(model, [form.source_label], "source_label")[0],
        target_labels=checked_labels(model, targets, "target_labels"),
        identity_weight=form.identity_weight,
        optimise_steps=form.optimise_steps,
        steps_between=form.steps_between,
        save_as=form.save_as,
        format=form.format,
    )
    return await jobs.answer(job, prefer)
