"""Response bodies. Request bodies that the workers share live in workers.contract; the JSON answers
that sampling jobs build live in workers.response_bodies, and are reused here as they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, RootModel

from workers.shared.contract import TrainingSpec
from workers.shared.exports import ExportRecord
from workers.shared.job_bodies import JobStatus, LiveProgress, TrainingJob  # noqa: F401 - documented here
from workers.shared.response_bodies import (
    ArithmeticResult,
    GeneratedImages,
    InterpolationFrames,
    Inversion,
    TrainingOutcome,
    Transformation,
)
from workers.shared.storage import NamedLatentRecord, SkippedFileRecord, TrainingStatus


class ValidationIssue(BaseModel):
    """One field at fault, laid out as FastAPI lays out its validation errors."""

    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field (and the index or key "
        "inside it)."
    )
    msg: str = Field(description="What is wrong, in words.")
    type: str = Field(description="A stable code for the kind of error, e.g. `missing`, `value_error`.")
    input: Any = Field(None, description="What was sent there, cut short when long.")
    ctx: dict[str, Any] | None = Field(None, description="Details, such as the limit that was crossed.")


class ErrorDetail(BaseModel):
    """Every error answer (app.errors): a sentence, or a list of the fields at fault. Validation errors
    (422), and other errors that name a field, are lists."""

    detail: str | list[ValidationIssue]


class Accepted(BaseModel):
    id: str
    status: str
    location: str = Field(description="Where to follow the job: `GET` it.")


class PngImage(BaseModel):
    """A picture route's answer with `format=json`."""

    png_base64: str = Field(description="The PNG, base64-encoded.")


class Dataset(BaseModel):
    id: str
    name: str
    created_at: datetime
    count: int = Field(description="Usable images.")
    image_size: int
    channels: int
    labels: str = Field(description="How labels were read: none, folders, csv, utkface or builtin.")
    classes: list[str]
    class_counts: dict[str, int]
    skipped: list[SkippedFileRecord] = Field(description="Files not used, each with the reason.")
    age_bins: list[int] | None = Field(
        None, description="Lower edges of the age groups (labels utkface, or csv with an age column)."
    )
    preview_url: str


class DatasetList(BaseModel):
    datasets: list[Dataset]


class TrainingJobList(BaseModel):
    training_jobs: list[TrainingJob]


class Model(BaseModel):
    id: str
    name: str
    status: TrainingStatus
    created_at: datetime
    dataset_id: str
    image_size: int
    channels: int
    latent_dim: int
    conditional: bool
    labels: list[str] = Field(description="Class names, in order (age groups by age).")
    label_counts: dict[str, int] = Field(description="Training images per label.")
    supports_transform: bool = Field(description="Conditional models can re-render an image at other labels.")
    has_encoder: bool = Field(description="Inversion starts from a trained encoder's guess.")
    checkpoints: list[int] = Field(description="Steps with a checkpoint; generate uses the newest.")
    samples: list[int] = Field(description="Steps with a progress grid at samples/{step}.png.")
    latest_metrics: dict[str, float] | None = None
    latest_evaluation: Evaluation | None = Field(
        None, description="The newest checkpoint's newest evaluation."
    )
    best_checkpoint: int | None = Field(None, description='The step that `"checkpoint": "best"` names.')
    training_job_id: str
    spec: TrainingSpec
    links: dict[str, str]


class Evaluation(BaseModel):
    """One checkpoint judged on one sample count (models.evaluation says how to read each figure)."""

    step: int = Field(description="The checkpoint's step.")
    samples: int = Field(description="Generated images judged.")
    real_images: int = Field(description="Real images of the data set they were compared with.")
    metrics: list[str]
    fid: float | None = Field(None, description="Fréchet Inception distance: lower is better.")
    per_class_fid: dict[str, float] | None = Field(None, description="FID per label (conditional models).")
    kid: float | None = Field(None, description="Kernel Inception distance (unbiased; near 0 is best).")
    kid_std: float | None = Field(None, description="KID's spread over subsets.")
    precision: float | None = Field(None, description="Share of fakes that look like some real image.")
    recall: float | None = Field(None, description="Share of reals the fakes cover (low: mode collapse).")
    seconds: float = Field(description="How long the evaluation took.")
    device: str
    source: str = Field(description="training (during the run) or request (POST …/evaluations).")
    created_at: datetime


class EvaluationList(BaseModel):
    evaluations: list[Evaluation] = Field(description="By step, then sample count.")
    best: Evaluation | None = Field(
        None,
        description='The checkpoint that `"checkpoint": "best"` names: lowest FID among one sample count.',
    )


class ExportList(BaseModel):
    exports: list[ExportRecord] = Field(description="Oldest first; `file_url` once an export has completed.")


class ModelList(BaseModel):
    models: list[Model]


class ModelMetrics(BaseModel):
    metrics: list[dict[str, float]] = Field(description="One row per logging step, oldest first.")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    redis: str
    workers: dict[str, int] = Field(description="Live workers serving each queue.")
    storage: str
    feature_network: str = Field(
        description="ok, or why evaluations will fail (the FID network missing or corrupt); "
        "not part of `ready`, since generation does not need it."
    )


class NamedLatentList(BaseModel):
    latents: list[NamedLatentRecord]


class JobResult(
    RootModel[
        GeneratedImages
        | InterpolationFrames
        | ArithmeticResult
        | Inversion
        | Transformation
        | Evaluation
        | TrainingOutcome
    ]
):
    """A finished job's JSON result, as the request that queued it would have answered; by the kind of
    job (`GET /v1/jobs/{job_id}/result`)."""
