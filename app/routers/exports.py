"""Exports: a checkpoint's EMA generator as an ONNX or TorchScript file that runs without ganforge
(docs/export.md). The export job runs on the evaluation queue's worker; its record is stored with the
model from the moment it is queued."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import FileResponse, JSONResponse, Response

from app.dependencies import JobClientDep, ModelDep, StorageDep
from app.model_inputs import checkpoint_step
from app.queue_client import accepted
from app.responses import BINARY, NO_CHECKPOINT, accepted_response, error_answer, error_answers, header
from app.schemas import ExportList
from workers.shared.contract import ID_PATTERN, ExportRequest
from workers.shared.exports import (
    ExportRecord,
    file_path,
    list_exports,
    read_export,
    record_path,
    write_export,
)
from workers.shared.storage import ModelManifest, utc_now

router = APIRouter(prefix="/v1/models/{model_id}/exports", tags=["export"])

ExportId = Annotated[str, Path(pattern=ID_PATTERN, description="An export's id (its job's id).")]


@router.post(
    "",
    status_code=202,
    summary="Export a checkpoint's generator as ONNX or TorchScript",
    operation_id="exports-start",
    response_class=JSONResponse,
    responses={
        **accepted_response("The export job: follow `Location`."),
        **error_answer(404, "No such model, or no checkpoint at that step."),
        **NO_CHECKPOINT,
        **error_answers(413, 422),
    },
)
def start_export(
    model: ModelDep, request: ExportRequest, storage: StorageDep, jobs: JobClientDep
) -> Response:
    """Always 202: the export's id is its job's id. The export is listed at once (`queued`); the job
    exports the EMA generator, runs the file on fixed seeds beside PyTorch and fails if they differ by
    more than the stated tolerance. 409 while the model has no checkpoint; 404 for a step it has none of."""
    step = checkpoint_step(model, request.checkpoint, storage)
    export_id = jobs.claimed_job_id()
    write_export(storage, queued_export(model, step, request, export_id))
    try:
        jobs.enqueue_export(model.id, export_id, webhook=request)
    except Exception:
        path = record_path(storage, model.id, export_id)
        storage.store.delete(path)  # never queued: not listed
        path.unlink(missing_ok=True)
        raise
    return accepted(export_id, f"/v1/jobs/{export_id}")


def queued_export(model: ModelManifest, step: int, request: ExportRequest, export_id: str) -> ExportRecord:
    return ExportRecord(
        id=export_id,
        model_id=model.id,
        format=request.format,
        step=step,
        status="queued",
        created_at=utc_now(),
        latent_dim=model.spec.latent_dim,
        labels=model.classes if model.conditional else [],
        image_size=model.image_size,
        channels=model.channels,
    )


@router.get(
    "",
    summary="The model's exports, oldest first",
    operation_id="exports-list",
    responses=error_answers(404, 422),
)
def list_model_exports(model: ModelDep, storage: StorageDep) -> ExportList:
    return ExportList(exports=list_exports(storage, model.id))


def get_export(model: ModelDep, export_id: ExportId, storage: StorageDep) -> ExportRecord:
    record = read_export(storage, model.id, export_id)
    if record is None:
        raise HTTPException(404, f"model {model.id!r} has no export {export_id!r}")
    return record


ExportDep = Annotated[ExportRecord, Depends(get_export)]


@router.get(
    "/{export_id}",
    summary="One export: its status, verification and file",
    operation_id="exports-get",
    responses=error_answers(404, 422),
)
def show_export(export: ExportDep) -> ExportRecord:
    return export


@router.get(
    "/{export_id}/file",
    summary="Download an export's file",
    operation_id="exports-file",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": BINARY}},
            "description": "The ONNX or TorchScript file.",
            "headers": {"Content-Disposition": header("`attachment`, with a file name.")},
        },
        **error_answer(404, "No such model or export."),
        **error_answer(409, "The export has not completed: queued, running or failed."),
        **error_answers(422),
    },
)
def download_export(export: ExportDep, storage: StorageDep) -> FileResponse:
    if export.status != "completed":
        detail = f"export {export.id!r} is {export.status}" + (f": {export.error}" if export.error else "")
        raise HTTPException(409, detail)
    path = file_path(storage, export)
    if not storage.fetch(path):
        raise HTTPException(404, f"the file of export {export.id!r} is gone")
    return FileResponse(path, media_type="application/octet-stream", filename=export.file_name)
