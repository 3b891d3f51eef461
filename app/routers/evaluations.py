"""Evaluations: a model's checkpoints judged by FID, KID and precision/recall on Inception-v3 features.
The work runs on the evaluation queue's worker; the rows are stored with the model."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from app.dependencies import JobClientDep, ModelDep, StorageDep
from app.model_inputs import checkpoint_step
from app.pictures import PNG_OR_JSON, PictureForm, PictureFormat, png_answer
from app.queue_client import accepted
from app.responses import NO_CHECKPOINT, accepted_response, error_answer, error_answers
from app.schemas import Evaluation, EvaluationList
from app.security import AdminOnly
from workers.shared.contract import EvaluationRequest
from workers.shared.plots import quality_curve_png

router = APIRouter(prefix="/v1/models/{model_id}", tags=["quality"])


@router.post(
    "/evaluations",
    status_code=202,
    summary="Evaluate a checkpoint (FID, KID, precision/recall)",
    operation_id="evaluations-start",
    response_class=JSONResponse,
    responses={
        **accepted_response("The evaluation job: follow `Location`."),
        **error_answer(404, "No such model, or no checkpoint at that step."),
        **NO_CHECKPOINT,
        **error_answers(413, 422),
    },
    dependencies=[AdminOnly],
)
def evaluate(
    model: ModelDep, request: EvaluationRequest, storage: StorageDep, jobs: JobClientDep
) -> Response:
    """Admin keys only (it takes a worker for minutes). Always 202: follow `Location`; `GET /v1/jobs/{id}`
    shows the phase and the images done. The row then appears in `GET /v1/models/{id}/evaluations`.
    409 while the model has no checkpoint; 404 for a step it has no checkpoint of."""
    step = checkpoint_step(model, request.checkpoint, storage)
    metrics = list(dict.fromkeys(request.metrics))
    job = jobs.enqueue_evaluation(model.id, step, request.samples, metrics, webhook=request)
    return accepted(job.id, f"/v1/jobs/{job.id}")


@router.get(
    "/evaluations",
    summary="The model's evaluations, and its best checkpoint",
    operation_id="evaluations-list",
    responses=error_answers(404, 422),
)
def list_evaluations(model: ModelDep, storage: StorageDep) -> EvaluationList:
    best = storage.best_evaluation(model.id)
    return EvaluationList(
        evaluations=[Evaluation(**row) for row in storage.evaluations(model.id)],
        best=Evaluation(**best) if best else None,
    )


@router.get(
    "/quality.png",
    summary="FID and KID against the step, the best checkpoint marked",
    operation_id="evaluations-plot",
    response_class=Response,
    responses={**PNG_OR_JSON, **error_answers(404, 422)},
)
def quality_curves(model: ModelDep, storage: StorageDep, format: PictureFormat = PictureForm.png) -> Response:
    """Rows of one sample count, since FID depends on the count: the best checkpoint's, else the largest."""
    rows = storage.evaluations(model.id)
    best = storage.best_evaluation(model.id)
    if rows:
        samples = best["samples"] if best else max(row["samples"] for row in rows)
        rows = [row for row in rows if row["samples"] == samples]
    return png_answer(quality_curve_png(rows, best["step"] if best else None), format)
