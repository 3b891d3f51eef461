"""Any job by id: its status and progress, and its result once finished."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from redis import Redis
from rq.job import Job
from rq.results import Result

from app.dependencies import JobClientDep, JobId, RedisDep
from app.lane_client import render_answer
from app.queue_client import render_result
from app.schemas import JobStatus
from workers.shared.contract import (
    ARITHMETIC_JOB,
    EVALUATE_JOB,
    INTERPOLATE_JOB,
    INVERT_JOB,
    TRAIN_JOB,
    TRANSFORM_JOB,
)
from workers.shared.generate_lane import is_lane_job, read_job
from workers.shared.progress import read_progress

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

KINDS = {
    TRAIN_JOB: "training",
    INTERPOLATE_JOB: "interpolate",
    ARITHMETIC_JOB: "arithmetic",
    INVERT_JOB: "invert",
    TRANSFORM_JOB: "transform",
    EVALUATE_JOB: "evaluation",
}


def _job(jobs: JobClientDep, job_id: str) -> Job:
    job = jobs.fetch(job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id!r} not found (finished results are kept for a limited time)")
    return job


def _lane_job(redis: Redis, job_id: str) -> dict[str, Any]:
    record = read_job(redis, job_id)
    if record is None:
        raise HTTPException(404, f"job {job_id!r} not found (finished results are kept for a limited time)")
    return record


@router.get("/{job_id}", summary="A job's status, progress, and where its result is")
def get_job(job_id: JobId, jobs: JobClientDep, redis: RedisDep) -> JobStatus:
    if is_lane_job(job_id):
        record = _lane_job(redis, job_id)
        answer = record["answer"]
        return JobStatus(
            id=job_id,
            kind="generate",
            status=record["status"],
            enqueued_at=record["enqueued_at"],
            ended_at=record["ended_at"],
            error=answer.error if answer else None,
            result_url=f"/v1/jobs/{job_id}/result" if record["status"] == "finished" else None,
        )
    job = _job(jobs, job_id)
    status = job.get_status()
    result = job.latest_result() if status in ("finished", "failed") else None
    error = None
    if result is not None and result.type != Result.Type.SUCCESSFUL:
        error = (result.exc_string or "failed").strip().splitlines()[-1]
    return JobStatus(
        id=job.id,
        kind=KINDS.get(job.func_name, job.func_name),
        status=status,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        progress=read_progress(redis, job.id),
        error=error,
        result_url=f"/v1/jobs/{job.id}/result" if status == "finished" else None,
    )


@router.get(
    "/{job_id}/result",
    summary="A finished job's result, as the original request would have answered",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/json": {}}}},
)
def get_job_result(job_id: JobId, jobs: JobClientDep, redis: RedisDep) -> Response:
    if is_lane_job(job_id):
        record = _lane_job(redis, job_id)
        if record["answer"] is None:
            raise HTTPException(409, f"job {job_id!r} has not finished (status: {record['status']})")
        return render_answer(record["answer"], failure_status=409)
    job = _job(jobs, job_id)
    result = job.latest_result()
    if result is None:
        raise HTTPException(409, f"job {job_id!r} has not finished (status: {job.get_status()})")
    return render_result(result, failure_status=409)
