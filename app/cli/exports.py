"""`ganforge export`: a model's generator as an ONNX or TorchScript file (an export job)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from app.cli.client import Api, given, print_json, write_output
from app.cli.progress import announce, follow_job, require_success
from app.cli.rendering import Checkpoint, Output, checkpoint_ref


def export(
    model_id: Annotated[str, typer.Argument(help="A model id (m_…).")],
    format: Annotated[Literal["onnx", "torchscript"], typer.Option(help="The file's format.")] = "onnx",
    checkpoint: Checkpoint = None,
    output: Output = None,
    wait: Annotated[bool, typer.Option(help="Follow the job and print the export (implied by -o).")] = False,
) -> None:
    """Export the generator as an ONNX or TorchScript file.

    Prints the job; with -o, waits for it and downloads the file."""
    api = Api.current()
    body = given(format=format, checkpoint=checkpoint_ref(checkpoint))
    job = api.post(f"/v1/models/{model_id}/exports", json=body).json()
    if not (wait or output):
        announce(job, api.json)
        return
    require_success(follow_job(api, job["id"]))
    record = api.get(f"/v1/jobs/{job['id']}/result").json()
    if output is not None:
        write_output(output, api.get(f"/v1/models/{model_id}/exports/{record['id']}/file").content)
    if api.json:
        print_json(record)
    else:
        typer.echo(f"export {record['id']}: {format}")
