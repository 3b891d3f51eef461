"""Any job by id: its status and progress, and its result once finished."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.job_handles import JobDep
from app.responses import error_answer, error_answers, picture
from app.schemas import JobResult, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
NOT_FOUND = error_answer(404, "No such job, or its result has expired.")


@router.get(
    "/{job_id}",
    summary="A job's status, progress, and where its result is",
    operation_id="jobs-get",
    responses={**NOT_FOUND, **error_answers(422, 502)},
)
def get_job(job: JobDep) -> JobStatus:
    return job.status()


@router.get(
    "/{job_id}/result",
    summary="A finished job's result, as the original request would have answered",
    operation_id="jobs-result",
    response_class=Response,
    responses={
        **picture(
            JobResult,
            "The picture or JSON document the original request asked for, with its headers.",
            media_types=("image/png", "image/gif"),
        ),
        **NOT_FOUND,
        **error_answer(409, "The job has not finished, or it failed: `detail` says which."),
        **error_answers(422, 502),
    },
)
def get_job_result(job: JobDep) -> Response:
    return job.result()
