"""The JSON bodies that sampling jobs answer (`format: json`): built by the job code, documented by the
API (app.schemas), defined once here. Pydantic only: no torch, and no other ganforge module, so both
sides can import it wherever they live.

Images travel as base64 PNGs; latents as lists of floats (latent_dim of them), already scaled by the
request's truncation where the job applied one.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

PNG_BASE64 = "A PNG, base64-encoded."


class GeneratedImage(BaseModel):
    seed: int = Field(description="The seed of its latent.")
    label: str | None = Field(None, description="Its class (conditional models).")
    png_base64: str = Field(description=PNG_BASE64)


class GeneratedImages(BaseModel):
    """`POST /v1/models/{model_id}/generate` with `format: json`."""

    model_id: str
    checkpoint: int = Field(description="The checkpoint's step.")
    images: list[GeneratedImage]


class LatentFrame(BaseModel):
    png_base64: str = Field(description=PNG_BASE64)
    latent: list[float] = Field(description="The latent it was rendered from.")


class InterpolationFrames(BaseModel):
    """`POST /v1/models/{model_id}/interpolate` with `format: json`."""

    model_id: str
    checkpoint: int
    frames: list[LatentFrame] = Field(description="Key latents and the frames between them, in order.")


class ArithmeticResult(BaseModel):
    """`POST /v1/models/{model_id}/arithmetic` with `format: json`."""

    model_id: str
    checkpoint: int
    latent: list[float] = Field(description="The weighted sum: save it as a named latent to reuse it.")
    png_base64: str = Field(description=f"The result's image. {PNG_BASE64}")
    variations: list[LatentFrame] = Field(description="Images of latents near the result.")


class Inversion(BaseModel):
    """`POST /v1/models/{model_id}/invert` with `format: json`."""

    model_id: str
    checkpoint: int
    latent: list[float] = Field(description="The latent whose image best matches the upload.")
    mse: float = Field(description="Mean squared error of the reconstruction on [-1, 1] pixels.")
    reconstruction_png_base64: str = Field(description=PNG_BASE64)
    encoder: bool = Field(description="Whether a trained encoder gave the starting guess.")
    optimise_steps: int = Field(description="Optimisation steps run after that guess.")
    saved_as: str | None = Field(None, description="The named latent it was saved as.")


class LabelledImage(BaseModel):
    label: str
    png_base64: str = Field(description=PNG_BASE64)


class Transformation(BaseModel):
    """`POST /v1/models/{model_id}/transform` with `format: json`."""

    model_id: str
    checkpoint: int
    latent: list[float] = Field(description="The latent kept while the label changes.")
    source_label: str
    reconstruction_png_base64: str = Field(description=f"The latent at the source label. {PNG_BASE64}")
    images: list[LabelledImage] = Field(description="The latent at each target label, in order.")
    saved_as: str | None = Field(None, description="The named latent it was saved as.")
    mse: float | None = Field(
        None, description="The inversion's reconstruction error (an uploaded image; null for a latent)."
    )
    encoder: bool | None = Field(
        None, description="Whether an encoder started the inversion (an uploaded image; null for a latent)."
    )


class TrainingOutcome(BaseModel):
    """A training job's result (`GET /v1/jobs/{job_id}/result` for a training job's id)."""

    model_id: str
    status: str = Field(description="completed, or canceled (stopped with a checkpoint).")
    step: int = Field(description="The step it stopped at.")
