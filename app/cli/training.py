"""`ganforge train`, `ganforge watch` and `ganforge jobs`: start training, follow any job, list, cancel and
resume training jobs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from app.cli.client import Api, ExitCode, given, print_json, stdout, write_output
from app.cli.progress import follow, follow_training, is_training_job, require_success, succeeded
from app.cli.rendering import Output
from workers.shared.contract import TrainingSpec

SPEC_PANEL = "Training spec (left out: the API's default)"
JSON_TYPES: dict[str, type] = {"integer": int, "number": float, "boolean": bool, "string": str}


def _spec_parameter(name: str, schema: dict[str, Any]) -> inspect.Parameter:
    """A `--name` option for one field of the training spec, typed, described and defaulted as the API
    documents it. None (left out) lets the API apply its default."""
    kind = next(option for option in schema.get("anyOf", [schema]) if option.get("type") != "null")
    if kind["type"] == "array":  # betas: a fixed number of numbers, `--betas 0.5 0.999`
        python_type: Any = tuple[tuple(JSON_TYPES[item["type"]] for item in kind["prefixItems"])]
    elif kind["type"] == "string" and "enum" in kind:
        python_type = Literal[tuple(kind["enum"])]
    else:
        python_type = JSON_TYPES[kind["type"]]
    notes = [schema.get("description", "")]
    if "enum" in kind and kind["type"] != "string":  # image_size: checked by the API
        notes.append(f"One of {', '.join(map(str, kind['enum']))}.")
    if schema.get("default") is not None:
        notes.append(f"Default: {schema['default']}.")
    option = typer.Option(
        help=" ".join(filter(None, notes)),
        rich_help_panel=SPEC_PANEL,
    )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[python_type | None, option]
    )


def with_spec_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` (which takes the fields as `**spec`) one option per training-spec field but
    `dataset_id`, read from the spec's schema: Typer builds options from the signature, so a field the
    API gains is an option here with no change."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    fields = TrainingSpec.model_json_schema()["properties"]
    spec = [_spec_parameter(name, schema) for name, schema in fields.items() if name != "dataset_id"]
    command.__signature__ = signature.replace(parameters=[*own, *spec])  # type: ignore[attr-defined]
    return command


@with_spec_options
def train(
    dataset: Annotated[str, typer.Option(help="A dataset id; `digits` is built in.")],
    watch: Annotated[bool, typer.Option(help="Show its progress until it finishes.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retries with the same key start one job.")
    ] = None,
    **spec: Any,
) -> None:
    """Start training a model on a dataset; prints the job (its `id`, the `model_id`)."""
    api = Api.current()
    body = {"dataset_id": dataset} | given(**spec)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job = api.post("/v1/training-jobs", json=body, headers=headers).json()
    if watch:
        typer.echo(f"training {job['id']} → model {job['model_id']}", err=True)
        job = follow_training(api, job["id"])
    _print_job(job, api.json)
    if watch:
        require_success(job)


def watch(
    job_id: Annotated[str, typer.Argument(help="A training job (tj_…) or any other job's id.")],
) -> None:
    """Show a job's progress until it finishes; exit status 0 when it completed, 1 when it failed or was
    canceled."""
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
    job = api.post(f"/v1/training-jobs/{job_id}/resume").json()
    if watch:
        job = follow_training(api, job_id)
    _print_job(job, api.json)
    if watch:
        require_success(job)


@jobs.command()
def result(job_id: JobId, output: Output = None) -> None:
    """A finished job's result, as the request that queued it would have answered: a picture to -o, or
    the JSON on stdout."""
    answer = Api.current().get(f"/v1/jobs/{job_id}/result")
    if output is not None:
        write_output(output, answer.content)
    elif answer.headers["content-type"].startswith("application/json"):
        print_json(answer.json())
    else:
        raise typer.BadParameter("the result is a picture: give -o FILE")


def _print_job(job: dict[str, Any], as_json: bool) -> None:
    """A training job (`TrainingJob`) or any job (`JobStatus`) in one line, or its JSON."""
    if as_json:
        print_json(job)
    elif "model_id" in job:
        error = f"  {job['error']}" if job.get("error") else ""
        typer.echo(
            f"{job['id']}  model {job['model_id']}  {job['status']}  {job['step']}/{job['steps']}{error}"
        )
    else:
        error = f"  {job['error']}" if job.get("error") else ""
        typer.echo(f"{job['id']}  {job['kind']}  {job['status']}{error}")
