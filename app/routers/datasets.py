"""Datasets: upload an archive of images, list, inspect, preview, delete."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from app.dependencies import DatasetDep, SettingsDep, StorageDep
from app.errors import field_error
from app.forms import MAX_NAME_LENGTH, DatasetUpload, Multipart
from app.pictures import PNG_OR_JSON, PictureForm, PictureFormat, png_file_answer
from app.responses import error_answer, error_answers
from app.schemas import Dataset, DatasetList
from workers.shared.datasets.ages import parse_age_bins
from workers.shared.datasets.archives import IngestLimits
from workers.shared.datasets.errors import DatasetError
from workers.shared.datasets.store import PREVIEW_FILE, ingest_upload
from workers.shared.storage import DatasetManifest, Storage

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
NOT_FOUND = error_answer(404, "No such dataset.")


def to_response(manifest: DatasetManifest) -> Dataset:
    return Dataset(**manifest.model_dump(), preview_url=f"/v1/datasets/{manifest.id}/preview.png")


@router.post(
    "",
    status_code=201,
    summary="Upload a dataset (zip or tar of images)",
    operation_id="datasets-upload",
    responses={
        **error_answers(400, 422),
        **error_answer(413, "The upload, or its images decoded, are larger than their limits."),
    },
)
def upload_dataset(
    upload: Annotated[DatasetUpload, Multipart], storage: StorageDep, settings: SettingsDep
) -> Dataset:
    """Images of any common format and mode are decoded, EXIF-rotated, centre-cropped, resized and
    packed. Files that are not usable images (or, for age labels, have a missing or impossible age) are
    skipped and listed with the reason; the upload succeeds if at least one image is usable. An archive
    whose images would decode to more than GANFORGE_MAX_DATASET_BYTES gets 413."""
    try:
        edges = parse_age_bins(upload.age_bins) if upload.age_bins is not None else None
    except DatasetError as error:
        raise field_error("body", error.field, error.reason, error.status) from error
    file = upload.file
    if not upload.name and len(file.filename or "") > MAX_NAME_LENGTH:
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
                name=upload.name or (file.filename or ""),
                image_size=upload.image_size,
                channels=upload.channels,
                labels=upload.labels,
                limits=limits,
                age_bins=edges,
            )
        except DatasetError as error:
            raise field_error("body", error.field, error.reason, error.status) from error
    return to_response(manifest)


@router.get("", summary="List datasets", operation_id="datasets-list")
def list_datasets(storage: StorageDep) -> DatasetList:
    return DatasetList(datasets=[to_response(manifest) for manifest in storage.list_datasets()])


@router.get(
    "/{dataset_id}",
    summary="A dataset's statistics: count, classes, skipped files",
    operation_id="datasets-get",
    responses={**NOT_FOUND, **error_answers(422)},
)
def get_dataset(dataset: DatasetDep) -> Dataset:
    return to_response(dataset)


@router.get(
    "/{dataset_id}/preview.png",
    summary="A grid of examples",
    operation_id="datasets-preview",
    response_class=Response,
    responses={**PNG_OR_JSON, **NOT_FOUND, **error_answers(422)},
)
def preview(dataset: DatasetDep, storage: StorageDep, format: PictureFormat = PictureForm.png) -> Response:
    path = storage.dataset_dir(dataset.id) / PREVIEW_FILE
    if not storage.fetch(path):
        raise HTTPException(404, f"dataset {dataset.id!r} has no preview in the store")
    return png_file_answer(path, format)


@router.delete(
    "/{dataset_id}",
    status_code=204,
    summary="Delete a dataset",
    operation_id="datasets-delete",
    responses={
        **NOT_FOUND,
        **error_answers(422),
        **error_answer(409, "A queued or running training job needs it."),
    },
)
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
