"""`ganforge generate`: images from a model, as a PNG (a grid when n > 1) or the API's JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.client import Api, given
from app.cli.rendering import (
    Checkpoint,
    Output,
    Truncation,
    Wait,
    checkpoint_ref,
    picture_format,
    request_picture,
    save_picture,
    split,
    split_ints,
)


def generate(
    model_id: Annotated[str, typer.Argument(help="A model id (m_…).")],
    n: Annotated[int | None, typer.Option("-n", help="How many images (default 1, or one per seed).")] = None,
    seed: Annotated[int | None, typer.Option(help="The first seed; n images use seed, seed+1, ….")] = None,
    seeds: Annotated[str | None, typer.Option(help="One seed per image, comma-separated.")] = None,
    label: Annotated[str | None, typer.Option(help="The class of every image (conditional models).")] = None,
    labels: Annotated[str | None, typer.Option(help="One class per image, comma-separated.")] = None,
    truncation: Truncation = None,
    checkpoint: Checkpoint = None,
    output: Output = None,
    wait: Wait = True,
) -> None:
    """Generate images: one PNG, a grid when -n > 1.

    The seeds and the checkpoint used are printed on stderr."""
    api = Api.current()
    body = given(
        n=n,
        seed=seed,
        seeds=split_ints(seeds),
        label=label,
        labels=split(labels),
        truncation=truncation,
        checkpoint=checkpoint_ref(checkpoint),
        format=picture_format(output, api, wait),
    )
    save_picture(api, request_picture(api, f"/v1/models/{model_id}/generate", wait, json=body), output)
