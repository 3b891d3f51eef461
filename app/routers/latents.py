"""The latent space of a model: named latents, interpolation, arithmetic and inversion. The work runs on
the sampling queue like generation; names and inputs are checked here first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Path, Response, UploadFile

from app.dependencies import JobClientDep, ModelDep, SettingsDep, StorageDep
from app.errors import field_error
from app.model_inputs import checked_labels, checkpoint_step, latent_definition, named_latents, required_label
from app.routers.models import PreferHeader
from app.schemas import ACCEPTED_RESPONSE, NamedLatentList
from workers.shared.budgets import check_frames, check_optimisation
from workers.shared.contract import (
    ARITHMETIC_JOB,
    INTERPOLATE_JOB,
    INVERT_JOB,
    LATENT_NAME_PATTERN,
    TRANSFORM_JOB,
    ArithmeticRequest,
    CheckpointRef,
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
IMAGE_RESPONSES = {
    200: {
        "content": {"image/png": {}, "image/gif": {}, "application/json": {}},
        "description": "A picture (png or gif) or, with `format: json`, base64 PNGs and the latents.",
    },
    **ACCEPTED_RESPONSE,
}
MAX_IMAGE_UPLOAD = 16 * 2**20
ReplaceForm = Annotated[
    bool, Form(description="Overwrite the named latent `save_as` if the model has one already (else 409).")
]


@router.post("/latents", status_code=201, summary="Save a named latent")
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
    """A models.budgets check's ValueError as a 422 naming `field`."""
    try:
        yield
    except ValueError as error:
        raise field_error("body", field, str(error)) from error


@router.get("/latents", summary="List named latents")
def list_latents(model: ModelDep, storage: StorageDep) -> NamedLatentList:
    return NamedLatentList(latents=storage.list_latents(model.id))


@router.get("/latents/{name}", summary="A named latent")
def get_latent(model: ModelDep, name: LatentName, storage: StorageDep) -> NamedLatentRecord:
    record = storage.read_latent(model.id, name)
    if record is None:
        raise HTTPException(404, f"model {model.id!r} has no named latent {name!r}")
    return record


@router.delete("/latents/{name}", status_code=204, summary="Delete a named latent")
def delete_latent(model: ModelDep, name: LatentName, storage: StorageDep) -> None:
    path = storage.latent_file(model.id, name)
    if not path.is_file():
        raise HTTPException(404, f"model {model.id!r} has no named latent {name!r}")
    path.unlink()


@router.post(
    "/interpolate",
    summary="Walk between latents: a PNG strip, a looping GIF, or JSON",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def interpolate(
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
    job = jobs.enqueue_sampling(
        INTERPOLATE_JOB,
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
    return jobs.answer(job, prefer)


@router.post(
    "/arithmetic",
    summary="Latent vector arithmetic, with variations around the result",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def arithmetic(
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
    job = jobs.enqueue_sampling(
        ARITHMETIC_JOB,
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
    return jobs.answer(job, prefer)


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
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def invert(
    model: ModelDep,
    image: Annotated[UploadFile, File(description="Any common image format; centre-cropped and resized.")],
    storage: StorageDep,
    settings: SettingsDep,
    jobs: JobClientDep,
    label: Annotated[str | None, Form(description="The image's class (conditional models).")] = None,
    steps: Annotated[
        int, Form(ge=0, le=2000, description="Optimisation steps after the encoder's guess.")
    ] = 200,
    save_as: Annotated[
        str | None, Form(pattern=LATENT_NAME_PATTERN, description="Save as a named latent.")
    ] = None,
    replace: ReplaceForm = False,
    checkpoint: Annotated[CheckpointRef | None, Form(description='A step, "newest" or "best".')] = None,
    format: Annotated[
        Literal["json", "png"], Form(description="json: latent and reconstruction; png: pair")
    ] = "json",
    prefer: PreferHeader = None,
) -> Response:
    """Returns the latent, the reconstruction and its mean squared error on [-1, 1] pixels. Steps ×
    the model's pixels are capped per request (docs/api.md)."""
    with _within_budget("steps"):
        check_optimisation(steps, model.image_size)
    _check_save_as(model, save_as, replace, storage)
    prepared = prepare_image(image.file.read(MAX_IMAGE_UPLOAD + 1), model, settings)
    job = jobs.enqueue_sampling(
        INVERT_JOB,
        model_id=model.id,
        checkpoint=checkpoint_step(model, checkpoint, storage),
        image=prepared,
        label=required_label(model, label, "label"),
        steps=steps,
        save_as=save_as,
        format=format,
    )
    return jobs.answer(job, prefer)


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
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def transform(
    model: ModelDep,
    storage: StorageDep,
    settings: SettingsDep,
    jobs: JobClientDep,
    source_label: Annotated[str, Form(description="The label of the input, e.g. its age group.")],
    image: Annotated[
        UploadFile | None, File(description="The input image; or give `latent` instead.")
    ] = None,
    latent: Annotated[
        str | None, Form(pattern=LATENT_NAME_PATTERN, description="A named latent instead.")
    ] = None,
    target_labels: Annotated[
        str | None, Form(description="Comma-separated labels to render, in order; default all the model's.")
    ] = None,
    identity_weight: Annotated[
        float, Form(ge=0, le=100, description="Weight of the feature (identity) term in the inversion.")
    ] = 0.1,
    optimise_steps: Annotated[int, Form(ge=0, le=2000)] = 200,
    steps_between: Annotated[
        int, Form(ge=0, le=32, description="Frames blending the condition between neighbouring targets.")
    ] = 0,
    save_as: Annotated[str | None, Form(pattern=LATENT_NAME_PATTERN)] = None,
    replace: ReplaceForm = False,
    checkpoint: Annotated[CheckpointRef | None, Form(description='A step, "newest" or "best".')] = None,
    format: Annotated[Literal["png", "json", "gif"], Form()] = "png",
    prefer: PreferHeader = None,
) -> Response:
    """Age-cGAN (Antipov et al. 2017): invert the image with its source label (encoder start, then an
    optimisation keeping pixels and discriminator features close), keep z, swap the label. `png`: one
    captioned strip — input, reconstruction at the source label, then each target; `json`: base64
    images and the latent; `gif`: the sequence, looping."""
    if not model.conditional:
        raise HTTPException(422, f"transform needs a conditional model; {model.id!r} is unconditional")
    if (image is None) == (latent is None):
        raise field_error("body", "image", "give exactly one of `image` or `latent`")
    targets = [label.strip() for label in target_labels.split(",")] if target_labels else list(model.classes)
    with _within_budget("target_labels"):
        check_frames(len(targets), steps_between, "target_labels", "steps_between")
    if image is not None:
        with _within_budget("optimise_steps"):
            check_optimisation(optimise_steps, model.image_size)
    _check_save_as(model, save_as, replace, storage)
    job = jobs.enqueue_sampling(
        TRANSFORM_JOB,
        model_id=model.id,
        checkpoint=checkpoint_step(model, checkpoint, storage),
        image=prepare_image(image.file.read(MAX_IMAGE_UPLOAD + 1), model, settings) if image else None,
        latent=named_latents(model, [latent], storage)[latent] if latent else None,
        source_label=checked_labels(model, [source_label], "source_label")[0],
        target_labels=checked_labels(model, targets, "target_labels"),
        identity_weight=identity_weight,
        optimise_steps=optimise_steps,
        steps_between=steps_between,
        save_as=save_as,
        format=format,
    )
    return jobs.answer(job, prefer)
