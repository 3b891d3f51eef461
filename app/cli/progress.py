"""Following long work to its end with a progress bar on stderr: a training job over its server-sent
events, any other job (`/v1/jobs/{id}`) by polling."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.client import Api, ExitCode, fail, print_json, stderr

JOB_FINISHED = ("finished", "failed", "canceled", "stopped")
POLL_SECONDS = 0.5


def announce(accepted: dict[str, Any], as_json: bool) -> None:
    """A queued job (a 202's `Accepted` body): its id and where to follow it."""
    if as_json:
        print_json(accepted)
    else:
        typer.echo(f"{accepted['id']}  {accepted['status']}  {accepted['location']}")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[extra]}"),
        console=stderr,
    )


def is_training_job(job_id: str) -> bool:
    """Training jobs (`tj_…`) have an event stream; other jobs are polled."""
    return job_id.startswith("tj_")


def _events(api: Api, job_id: str) -> Iterator[dict[str, Any]]:
    """The job's progress events until the stream ends (the job finished)."""
    try:
        with api.http.stream("GET", f"/v1/training-jobs/{job_id}/events", timeout=None) as stream:
            if not stream.is_success:
                stream.read()
                api.refuse(stream)
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line.removeprefix("data: "))
    except httpx.TransportError as error:
        fail(ExitCode.SERVER_ERROR, f"lost the event stream of {job_id}: {error}")


def follow_training(api: Api, job_id: str) -> dict[str, Any]:
    """Show a training job's steps until it finishes; its final state (`GET /v1/training-jobs/{id}`)."""
    with progress_bar() as bar:
        task = bar.add_task("queued", total=None, extra="")
        for event in _events(api, job_id):
            phase = event.get("phase")  # after the GAN: the inversion encoder's training
            if phase and event.get("status") == "running":
                description, done, total = phase, event.get("encoder_step", 0), event.get("encoder_steps")
            else:
                description, done, total = event.get("status", ""), event.get("step", 0), event.get("steps")
            losses = (
                f"loss_d {event['loss_d']:.3f}  loss_g {event['loss_g']:.3f}"
                if event.get("loss_d") is not None
                else ""
            )
            bar.update(task, description=description, completed=done, total=total, extra=losses)
    return api.get(f"/v1/training-jobs/{job_id}").json()


def follow_job(api: Api, job_id: str) -> dict[str, Any]:
    """Poll `GET /v1/jobs/{id}` until the job finishes; its final status. The bar counts what the job
    reports as `done` of `total` (an evaluation's images), else just the time."""
    with progress_bar() as bar:
        task = bar.add_task("queued", total=None, extra="")
        while True:
            job = api.get(f"/v1/jobs/{job_id}").json()
            progress = job.get("progress") or {}
            bar.update(
                task,
                description=f"{job['kind']} {job['status']}",
                completed=progress.get("done", 0),
                total=progress.get("total"),
                extra=progress.get("phase", ""),
            )
            if job["status"] in JOB_FINISHED:
                return job
            time.sleep(POLL_SECONDS)


def follow(api: Api, job_id: str) -> dict[str, Any]:
    """Either kind of job, to its end."""
    return follow_training(api, job_id) if is_training_job(job_id) else follow_job(api, job_id)


def succeeded(job: dict[str, Any]) -> bool:
    return job["status"] in ("completed", "finished")


def require_success(job: dict[str, Any]) -> None:
    """End the command with exit status 1 if the job did not succeed."""
    if not succeeded(job):
        reason = f": {job['error']}" if job.get("error") else ""
        fail(ExitCode.JOB_FAILED, f"job {job['id']} {job['status']}{reason}")
