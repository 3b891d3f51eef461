"""`ganforge evaluate`: judge a checkpoint by FID, KID and precision/recall (an evaluation job)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.client import Api, given, print_json
from app.cli.progress import announce, follow_job, require_success
from app.cli.rendering import Checkpoint, checkpoint_ref, split


def evaluate(
    model_id: Annotated[str, typer.Argument(help="A model id (m_…).")],
    checkpoint: Checkpoint = None,
    samples: Annotated[int | None, typer.Option(help="Generated images to judge (5,000).")] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated: fid, kid, precision_recall (default all).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job and print the evaluation.")] = False,
) -> None:
    """Judge a checkpoint: FID, KID, precision/recall.

    Prints the job, or with --wait the evaluation's row."""
    api = Api.current()
    body = given(checkpoint=checkpoint_ref(checkpoint), samples=samples, metrics=split(metrics))
    job = api.post(f"/v1/models/{model_id}/evaluations", json=body).json()
    if not wait:
        announce(job, api.json)
        return
    require_success(follow_job(api, job["id"]))
    row = api.get(f"/v1/jobs/{job['id']}/result").json()
    if api.json:
        print_json(row)
        return
    figures = ("fid", "kid", "precision", "recall")
    summary = ", ".join(f"{name} {row[name]:.4g}" for name in figures if row.get(name) is not None)
    typer.echo(f"step {row['step']}, {row['samples']} samples: {summary}")
