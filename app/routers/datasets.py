"""Datasets: upload an archive of images, list, inspect, preview, delete."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import AfterValidator

from app.dependencies import DatasetDep, SettingsDep, StorageDep
from app.errors import field_error
from app.schemas import PNG_RESPONSE, Dataset, DatasetList
from workers.shared.datasets.ages import parse_age_bins
from workers.shared.datasets.archives import IngestLimits
from workers.shared.datasets.errors import DatasetError
from workers.shared.datasets.store import PREVIEW_FILE, ingest_upload
from workers.shared.storage import DatasetManifest, Storage

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
MAX_NAME_LENGTH = 100


def _one_of(*allowed: int):
    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


def to_response(manifest: DatasetManifest) -> Dataset:
    return Dataset(**manifest.model_dump(), preview_url=f"/v1/datasets/{manifest.id}/preview.png")


@router.post("", status_code=201, summary="Upload a dataset (zip or tar of images)")
def upload_dataset(
    file: Annotated[UploadFile, File(description="A .zip, .tar or .tar.gz of images.")],
    storage: StorageDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=MAX_NAME_LENGTH)] = "",
    image_size: Annotated[int, Form(description="32, 64 or 128"), _one_of(32, 64, 128)] = 64,
    channels: Annotated[int, Form(description="1 (grey) or 3 (RGB)"), _one_of(1, 3)] = 3,
    labels: Annotated[
        Literal["none", "folders", "csv", "utkface"],
        Form(
            description="none; folders: the first folder names the class; csv: labels.csv with the columns "
            "filename,label or filename,age; utkface: the age starts the file name ({age}_{gender}_{race}_…)"
        ),
    ] = "none",
    age_bins: Annotated[
        str | None,
        Form(
            max_length=200,
            description="Ages are grouped by these increasing lower edges, comma-separated (labels utkface "
            "or csv with an age column). Default 0,19,30,40,50,60: 0-18, 19-29, 30-39, 40-49, 50-59, 60+.",
        ),
    ] = None,
) -> Dataset:
    """Images of any common format and mode are decoded, EXIF-rotated, centre-cropped, resized and
    packed. Files that are not usable images (or, for age labels, have a missing or impossible age) are
    skipped and listed with the reason; the upload succeeds if at least one image is usable. An archive
    whose images would decode to more than GANFORGE_MAX_DATASET_BYTES gets 413."""
    try:
        edges = parse_age_bins(age_bins) if age_bins is not None else None
    except DatasetError as error:
        raise field_error("body", error.field, error.reason, error.status) from error
    if not name and len(file.filename or "") > MAX_NAME_LENGTH:
        raise field_error(
            "body", "file", f"the file name is longer than {MAX_NAME_LENGTH} characters: give a `name`"
        )
    limits = IngestLimits(
        max_pixels=settings.max_image_pixels,
        max_total_bytes=4 * settings.max_upload_bytes,
        max_decoded_bytes=settings.max_dataset_bytes,
    )
    with tempfile.NamedTemporaryFile(dir=storage.uploads_dir(), suffix=".upload") as archive:
        shutil.copyfileobj(file.file, archive, length=2**20)
        archive.flush()
        try:
            manifest = ingest_upload(
                storage,
                Path(archive.name),
                name=name or (file.filename or ""),
                image_size=image_size,
                channels=channels,
                labels=labels,
                limits=limits,
                age_bins=edges,
            )
        except DatasetError as error:
            raise field_error("body", error.field, error.reason, error.status) from error
    return to_response(manifest)


@router.get("", summary="List datasets")
def list_datasets(storage: StorageDep) -> DatasetList:
    return DatasetList(datasets=[to_response(manifest) for manifest in storage.list_datasets()])


@router.get("/{dataset_id}", summary="A dataset's statistics: count, classes, skipped files")
def get_dataset(dataset: DatasetDep) -> Dataset:
    return to_response(dataset)


@router.get(
    "/{dataset_id}/preview.png", summary="A grid of examples", response_class=Response, responses=PNG_RESPONSE
)
def preview(dataset: DatasetDep, storage: StorageDep) -> FileResponse:
    return FileResponse(storage.dataset_dir(dataset.id) / PREVIEW_FILE, media_type="image/png")


@router.delete("/{dataset_id}", status_code=204, summary="Delete a dataset")
def delete_dataset(dataset: DatasetDep, storage: StorageDep) -> None:
    """Refused (409) while a queued or running training job still needs it."""
    _refuse_if_in_use(storage, dataset.id)
    storage.delete_tree(storage.dataset_dir(dataset.id))


def _refuse_if_in_use(storage: Storage, dataset_id: str) -> None:
    busy = [
        m.training_job_id
        for m in storage.list_models()
        if m.dataset_id == dataset_id and m.status in ("queued", "running")
    ]
    if busy:
        raise HTTPException(409, f"dataset {dataset_id!r} is in use by training jobs {', '.join(busy)}")
