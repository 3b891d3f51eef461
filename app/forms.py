"""Multipart request bodies (an uploaded file with its fields), as models: each is one schema in the
OpenAPI document, named for what it is. Form fields are text, so numbers and booleans are parsed
(unlike the strict JSON bodies of workers.contract)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form, UploadFile
from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from workers.shared.contract import LATENT_NAME_PATTERN, CheckpointRef, WebhookFields, WebhookUrl

MAX_NAME_LENGTH = 100

Multipart = Form(media_type="multipart/form-data")
"""The `Form()` of a body that carries a file."""

UploadedFile = Annotated[
    UploadFile,
    WithJsonSchema({"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}),
]
"""A file part. OpenAPI 3.1 marks one by `contentMediaType`; many client generators (among them
openapi-python-client) know a file only by the older `format: binary`, and would send text."""


def _one_of(*allowed: int) -> AfterValidator:
    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


class DatasetUpload(BaseModel):
    file: UploadedFile = Field(description="A .zip, .tar or .tar.gz of images.")
    name: str = Field("", max_length=MAX_NAME_LENGTH, description="Default: the archive's file name.")
    image_size: Annotated[int, _one_of(32, 64, 128)] = Field(64, description="32, 64 or 128")
    channels: Annotated[int, _one_of(1, 3)] = Field(3, description="1 (grey) or 3 (RGB)")
    labels: Literal["none", "folders", "csv", "utkface"] = Field(
        "none",
        description="none; folders: the first folder names the class; csv: labels.csv with the columns "
        "filename,label or filename,age; utkface: the age starts the file name ({age}_{gender}_{race}_…)",
    )
    age_bins: str | None = Field(
        None,
        max_length=200,
        description="Ages are grouped by these increasing lower edges, comma-separated (labels utkface "
        "or csv with an age column). Default 0,19,30,40,50,60: 0-18, 19-29, 30-39, 40-49, 50-59, 60+.",
    )


LatentName = Annotated[str, Field(pattern=LATENT_NAME_PATTERN)]
ReplaceField = Field(
    False, description="Overwrite the named latent `save_as` if the model has one already (else 409)."
)
CheckpointField = Field(None, description='A step, "newest" or "best".')


class WebhookForm(BaseModel):
    webhook: WebhookUrl | None = Field(
        None, description="An http(s) URL to POST the job's JSON to when it ends (docs/webhooks.md)."
    )

    def webhook_fields(self) -> WebhookFields:
        """The form's webhook as a JSON body's: a form job sends only `completed`."""
        return WebhookFields.model_construct(webhook=self.webhook, webhook_events_filter=["completed"])


class InvertRequest(WebhookForm):
    image: UploadedFile = Field(description="Any common image format; centre-cropped and resized.")
    label: str | None = Field(None, description="The image's class (conditional models).")
    steps: int = Field(200, ge=0, le=2000, description="Optimisation steps after the encoder's guess.")
    save_as: LatentName | None = Field(None, description="Save as a named latent.")
    replace: bool = ReplaceField
    checkpoint: CheckpointRef | None = CheckpointField
    format: Literal["json", "png"] = Field("json", description="json: latent and reconstruction; png: pair")


class TransformRequest(WebhookForm):
    source_label: str = Field(description="The label of the input, e.g. its age group.")
    image: UploadedFile | None = Field(None, description="The input image; or give `latent` instead.")
    latent: LatentName | None = Field(None, description="A named latent instead.")
    target_labels: str | None = Field(
        None, description="Comma-separated labels to render, in order; default all the model's."
    )
    identity_weight: float = Field(
        0.1, ge=0, le=100, description="Weight of the feature (identity) term in the inversion."
    )
    optimise_steps: int = Field(200, ge=0, le=2000)
    steps_between: int = Field(
        0, ge=0, le=32, description="Frames blending the condition between neighbouring targets."
    )
    save_as: LatentName | None = None
    replace: bool = ReplaceField
    checkpoint: CheckpointRef | None = CheckpointField
    format: Literal["png", "json", "gif"] = "png"
