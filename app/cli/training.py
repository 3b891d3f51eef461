"""`ganforge train`, `ganforge watch` and `ganforge jobs`: start training, follow any job, list, cancel and
resume training jobs."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.client import Api, ExitCode, given, print_json, stdout, write_output
from app.cli.progress import follow, follow_training, is_training_job, require_success, succeeded
from app.cli.rendering import Output
from app.cli.spec_options import with_spec_options


@with_spec_options
def train(
    dataset: Annotated[str, typer.Option(help="A dataset id; `digits` is built in.")],
    watch: Annotated[bool, typer.Option(help="Show its progress until it finishes.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retries with the same key start one job.")
    ] = None,
    **spec: Any,
) -> None:
    """Start training a model on a dataset.

    Prints the job: its `id` and the `model_id`; --watch follows it to its end."""
    api = Api.current()
    body = {"dataset_id": dataset} | given(**spec)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    _report(api, api.post("/v1/training-jobs", json=body, headers=headers).json(), watch)


def watch(
    job_id: Annotated[str, typer.Argument(help="A training job (tj_…) or any other job's id.")],
) -> None:
    """Show a job's progress until it finishes.

    Exit status 0 when it completed, 1 when it failed or was canceled."""
    api = Api.current()
    job = follow(api, job_id)
    if api.json:
        print_json(job)
    else:
        typer.echo(f"{job_id}: {job['status']}" + (f" ({job['error']})" if job.get("error") else ""))
    if not succeeded(job):
        raise typer.Exit(ExitCode.JOB_FAILED)


jobs = typer.Typer(help="Training jobs, and any job by id: list, show, cancel, resume, fetch a result.")


@jobs.callback(invoke_without_command=True)
def jobs_default(ctx: typer.Context) -> None:
    """`ganforge jobs` alone lists the training jobs."""
    if ctx.invoked_subcommand is None:
        list_jobs()


@jobs.command("ls")
def list_jobs() -> None:
    """List training jobs."""
    api = Api.current()
    answer = api.get("/v1/training-jobs").json()
    if api.json:
        print_json(answer)
        return
    table = Table("id", "model", "status", "step", "name", box=None)
    for job in answer["training_jobs"]:
        table.add_row(job["id"], job["model_id"], job["status"], f"{job['step']}/{job['steps']}", job["name"])
    stdout.print(table)


JobId = Annotated[str, typer.Argument(help="A job id: tj_… for training, else any job's.")]
TrainingJobId = Annotated[str, typer.Argument(help="A training job's id (tj_…).")]


@jobs.command()
def show(job_id: JobId) -> None:
    """A job's status and progress."""
    api = Api.current()
    path = f"/v1/training-jobs/{job_id}" if is_training_job(job_id) else f"/v1/jobs/{job_id}"
    _print_job(api.get(path).json(), api.json)


@jobs.command()
def cancel(job_id: TrainingJobId) -> None:
    """Stop a training job with a checkpoint."""
    api = Api.current()
    _print_job(api.post(f"/v1/training-jobs/{job_id}/cancel").json(), api.json)


@jobs.command()
def resume(
    job_id: TrainingJobId,
    watch: Annotated[bool, typer.Option(help="Show its progress until it finishes.")] = False,
) -> None:
    """Continue a canceled or failed training job from its newest checkpoint."""
    api = Api.current()
    _report(api, api.post(f"/v1/training-jobs/{job_id}/resume").json(), watch)


@jobs.command()
def result(job_id: JobId, output: Output = None) -> None:
    """A finished job's result: a picture to -o, or the JSON on stdout.

    As the request that queued it would have answered."""
    answer = Api.current().get(f"/v1/jobs/{job_id}/result")
    if output is not None:
        write_output(output, answer.content)
    elif answer.headers["content-type"].startswith("application/json"):
        print_json(answer.json())
    else:
        raise typer.BadParameter("the result is a picture: give -o FILE")


def _report(api: Api, job: dict[str, Any], watch: bool) -> None:
    """Print a training job that was just queued; with `watch`, follow it to its end first, and exit 1
    unless it completed."""
    if watch:
        typer.echo(f"following {job['id']} (model {job['model_id']})", err=True)
        job = follow_training(api, job["id"])
    _print_job(job, api.json)
    if watch:
        require_success(job)


def _print_job(job: dict[str, Any], as_json: bool) -> None:
    """A training job (`TrainingJob`) or any job (`JobStatus`) in one line, or its JSON."""
    if as_json:
        print_json(job)
        return
    error = f"  {job['error']}" if job.get("error") else ""
    if "model_id" in job:
        typer.echo(
            f"{job['id']}  model {job['model_id']}  {job['status']}  {job['step']}/{job['steps']}{error}"
        )
    else:
        typer.echo(f"{job['id']}  {job['kind']}  {job['status']}{error}")
