"""`ganforge interpolate`, `arithmetic`, `invert` and `transform`: the latent-space routes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from app.cli.client import Api, given
from app.cli.rendering import (
    Checkpoint,
    Output,
    Truncation,
    Wait,
    checkpoint_ref,
    latent_ref,
    picture_format,
    request_picture,
    save_picture,
    split,
)

ModelId = Annotated[str, typer.Argument(help="A model id (m_…).")]
Label = Annotated[str | None, typer.Option(help="The class to render (conditional models).")]
SaveAs = Annotated[str | None, typer.Option(help="Save the latent under this name ([a-z0-9_]{1,64}).")]
Replace = Annotated[
    bool, typer.Option("--replace", help="Overwrite the latent --save-as names, if it exists.")
]
ImageFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An image, any common format.")]


def interpolate(
    model_id: ModelId,
    latents: Annotated[
        list[str],
        typer.Argument(help="Two or more latents: a seed (7), seeds to average (1,2,3), or a name."),
    ],
    steps: Annotated[int | None, typer.Option(help="Frames between each pair (default 8).")] = None,
    method: Annotated[Literal["slerp", "lerp"] | None, typer.Option(help="Default: slerp.")] = None,
    label: Label = None,
    labels: Annotated[str | None, typer.Option(help="One class per latent, comma-separated.")] = None,
    truncation: Truncation = None,
    checkpoint: Checkpoint = None,
    output: Output = None,
    wait: Wait = True,
) -> None:
    """Walk between latents: a strip (.png) or an animation (.gif)."""
    api = Api.current()
    body = given(
        latents=[latent_ref(text) for text in latents],
        steps=steps,
        method=method,
        label=label,
        labels=split(labels),
        truncation=truncation,
        checkpoint=checkpoint_ref(checkpoint),
        format=picture_format(output, api, wait),
    )
    save_picture(api, request_picture(api, f"/v1/models/{model_id}/interpolate", wait, json=body), output)


def arithmetic(
    model_id: ModelId,
    expression: Annotated[str, typer.Argument(help='Over named latents, e.g. "a - b + 0.5*c".')],
    variations: Annotated[int | None, typer.Option(help="Images around the result.")] = None,
    noise: Annotated[float | None, typer.Option(help="Uniform noise of the variations (±0.25).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the variations' noise.")] = None,
    label: Label = None,
    truncation: Truncation = None,
    checkpoint: Checkpoint = None,
    output: Output = None,
    wait: Wait = True,
) -> None:
    """Render a weighted sum of named latents, with variations around it."""
    api = Api.current()
    body = given(
        expression=expression,
        variations=variations,
        noise=noise,
        seed=seed,
        label=label,
        truncation=truncation,
        checkpoint=checkpoint_ref(checkpoint),
        format=picture_format(output, api, wait),
    )
    save_picture(api, request_picture(api, f"/v1/models/{model_id}/arithmetic", wait, json=body), output)


def invert(
    model_id: ModelId,
    image: ImageFile,
    label: Annotated[str | None, typer.Option(help="The image's class (conditional models).")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimisation steps after the encoder (200).")] = None,
    save_as: SaveAs = None,
    replace: Replace = False,
    checkpoint: Checkpoint = None,
    output: Output = None,
    wait: Wait = True,
) -> None:
    """Find the latent of an image.

    -o writes the image beside its reconstruction, and the reconstruction error is printed; --json prints
    the latent, the reconstruction and its error."""
    api = Api.current()
    fields = given(
        label=label,
        steps=steps,
        save_as=save_as,
        replace=replace or None,
        checkpoint=checkpoint_ref(checkpoint),
        format=picture_format(output, api, wait),
    )
    _send_image(api, f"/v1/models/{model_id}/invert", image, fields, wait, output)


def transform(
    model_id: ModelId,
    source_label: Annotated[str, typer.Option(help="The class of the input, e.g. its age group.")],
    image: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="The input image (or --latent).")
    ] = None,
    latent: Annotated[str | None, typer.Option(help="A named latent instead of an image.")] = None,
    targets: Annotated[
        str | None, typer.Option(help="Classes to render, comma-separated; default all the model's.")
    ] = None,
    identity_weight: Annotated[float | None, typer.Option(help="Weight of the identity term.")] = None,
    optimise_steps: Annotated[int | None, typer.Option(help="Inversion steps (200).")] = None,
    steps_between: Annotated[int | None, typer.Option(help="Frames between neighbouring classes.")] = None,
    save_as: SaveAs = None,
    replace: Replace = False,
    checkpoint: Checkpoint = None,
    output: Output = None,
    wait: Wait = True,
) -> None:
    """Render the same subject at other classes (face-aging style).

    A strip (.png) or an animation (.gif)."""
    api = Api.current()
    fields = given(
        source_label=source_label,
        latent=latent,
        target_labels=targets,
        identity_weight=identity_weight,
        optimise_steps=optimise_steps,
        steps_between=steps_between,
        save_as=save_as,
        replace=replace or None,
        checkpoint=checkpoint_ref(checkpoint),
        format=picture_format(output, api, wait),
    )
    _send_image(api, f"/v1/models/{model_id}/transform", image, fields, wait, output)


def _send_image(
    api: Api, path: str, image: Path | None, fields: dict, wait: bool, output: Path | None
) -> None:
    """A multipart picture request: the form fields as text, and the image if there is one."""
    data = {
        name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in fields.items()
    }
    if image is None:
        answer = request_picture(api, path, wait, data=data)
    else:
        with image.open("rb") as file:
            answer = request_picture(api, path, wait, data=data, files={"image": (image.name, file)})
    save_picture(api, answer, output)
