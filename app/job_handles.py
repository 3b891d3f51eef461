"""One interface to any job the API reports on (`/v1/jobs/{job_id}`), however it was submitted: an RQ
job (app.queue_client) or a generate request on the generate lane (app.lane_client). The id says which;
only `find_job` looks."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, HTTPException
from fastapi.responses import Response

from app.dependencies import JobId, RedisDep
from app.lane_client import LaneJob
from app.queue_client import RqJob
from app.schemas import JobStatus
from workers.shared.generate_lane import is_lane_job


class JobHandle(Protocol):
    def status(self) -> JobStatus:
        """Its status and progress, and where its result is once it has one."""
        ...

    def result(self) -> Response:
        """Its result as the original request would have been answered; 409 while it has none, and
        with the error of a job that failed."""
        ...


def find_job(job_id: JobId, redis: RedisDep) -> JobHandle:
    handle = LaneJob.find(redis, job_id) if is_lane_job(job_id) else RqJob.find(redis, job_id)
    if handle is None:
        raise HTTPException(404, f"job {job_id!r} not found (finished results are kept for a limited time)")
    return handle


JobDep = Annotated[JobHandle, Depends(find_job)]
