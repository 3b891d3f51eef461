"""The job contract shared by the API and the workers: queue names, job functions, payloads.

The API enqueues jobs by their dotted function name, so it never imports the job code (or torch).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from workers.shared.budgets import MAX_IMAGES, MAX_LATENT_VALUE, MAX_WEIGHT, check_frames
from workers.shared.export_format import ExportFormat
from workers.shared.recipes import Architecture, AugmentPolicy, Conditioning
from workers.shared.webhook_urls import checked_webhook_url

TRAINING_QUEUE = "training"
EVALUATION_QUEUE = "evaluation"
SAMPLING_QUEUE = "sampling"
QUEUES = (TRAINING_QUEUE, EVALUATION_QUEUE, SAMPLING_QUEUE)
"""What a worker serves (`python -m workers --queues …`) and /readyz counts workers for."""
OPTIMISATION_QUEUE = "optimisation"
"""Latent jobs that optimise (invert, transform): seconds to minutes each. A sampling worker serves this
queue after the sampling queue, so a client's long jobs never hold up anyone's short ones."""
SAMPLING_QUEUES = (SAMPLING_QUEUE, OPTIMISATION_QUEUE)
WEBHOOK_QUEUE = "webhooks"
"""Webhook deliveries, served by `python -m workers.hooks` (workers.shared.webhooks)."""
RQ_QUEUES = (TRAINING_QUEUE, EVALUATION_QUEUE, *SAMPLING_QUEUES, WEBHOOK_QUEUE)

TRAIN_JOB = "workers.jobs.training.train_model"
INTERPOLATE_JOB = "workers.jobs.latents.interpolate"
ARITHMETIC_JOB = "workers.jobs.latents.arithmetic"
INVERT_JOB = "workers.jobs.latents.invert_image"
TRANSFORM_JOB = "workers.jobs.latents.transform"
EVALUATE_JOB = "workers.jobs.evaluation.evaluate_model"
EXPORT_JOB = "workers.jobs.export.export_model"
OPTIMISING_JOBS = frozenset({INVERT_JOB, TRANSFORM_JOB})

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
LATENT_NAME_PATTERN = r"^[a-z0-9_]{1,64}$"
ResourceId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
MAX_SEED = 2**63 - 1
MAX_EVAL_SAMPLES = 50_000
MAX_TRAINING_DEVICES = 16  # the most GPUs one host carries (an HGX board has 8; some have 16)
MIN_EVAL_SAMPLES = 10
METRICS = ("fid", "kid", "precision_recall")
MetricName = Literal["fid", "kid", "precision_recall"]
CheckpointRef = Annotated[int, Field(ge=0)] | Literal["newest", "best"]
"""A checkpoint's step, `"newest"`, or `"best"`: the lowest FID among the model's evaluations."""


class StrictModel(BaseModel):
    """Request bodies reject unknown fields, so a typo is an error rather than a silent default, and
    take values only of their own JSON type: `true`, `"2"` and `2.0` are not counts, `"yes"` is not a
    boolean (a float field still takes `2`, as JSON does not tell them apart)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _label_as_text(value: object) -> object:
    """Labels are class names; accept `3` for the class named "3"."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Label = Annotated[str, BeforeValidator(_label_as_text), StringConstraints(min_length=1, max_length=100)]
LatentName = Annotated[str, StringConstraints(pattern=LATENT_NAME_PATTERN)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
LatentValue = Annotated[FiniteFloat, Field(ge=-MAX_LATENT_VALUE, le=MAX_LATENT_VALUE)]


WebhookEvent = Literal["start", "progress", "checkpoint", "completed"]
DEFAULT_WEBHOOK_EVENTS: list[WebhookEvent] = ["start", "checkpoint", "completed"]


WebhookUrl = Annotated[str, AfterValidator(checked_webhook_url)]
"""An http(s) URL that ganforge may POST to (workers.shared.webhook_urls)."""


class WebhookFields(StrictModel):
    """Where to POST a job's events (docs/webhooks.md). Jobs other than training send only `completed`."""

    webhook: WebhookUrl | None = Field(
        None,
        description="An http(s) URL to POST the job's JSON to, signed per Standard Webhooks; not a loopback, "
        "private or link-local address unless the server allows it.",
        examples=["https://example.com/hooks/ganforge"],
    )
    webhook_events_filter: list[WebhookEvent] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS),
        min_length=1,
        max_length=4,
        description="Which events to send; `progress` is sent at most every few seconds.",
    )


class TrainingSpec(WebhookFields):
    """What to train. Every field but `dataset_id` has a default."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "digits",
                    "name": "digits-cgan",
                    "conditional": True,
                    "image_size": 32,
                    "steps": 2000,
                }
            ]
        },
    )

    dataset_id: ResourceId = Field(description="A dataset id from `GET /v1/datasets`; `digits` is built in.")
    name: str = Field("", max_length=100, description="A name for the model.")
    conditional: bool = Field(False, description="Condition G and D on the dataset's labels.")
    image_size: Literal[32, 64, 128] | None = Field(None, description="Default: the dataset's image size.")
    latent_dim: int = Field(100, ge=2, le=1024)
    base_channels: int = Field(64, ge=4, le=512, description="Width of the narrowest layer.")
    loss: Literal["non_saturating", "hinge"] = "non_saturating"
    label_smoothing: FiniteFloat = Field(
        0.1,
        ge=0,
        le=0.5,
        description="One-sided label smoothing: with the non_saturating loss D's target for real images is "
        "1 − this, so D cannot grow certain and leave G stuck. 0: none. The hinge loss ignores it.",
    )
    spectral_norm: bool = Field(False, description="Spectral normalisation in D (replaces its BatchNorm).")
    batch_size: int = Field(64, ge=2, le=4096)
    steps: int = Field(2000, gt=0, le=10_000_000)
    lr_g: FiniteFloat = Field(2e-4, gt=0, le=1)
    lr_d: FiniteFloat = Field(2e-4, gt=0, le=1)
    # Not strict itself, as a JSON array arrives as a list, not a tuple; its two floats are.
    betas: tuple[Annotated[FiniteFloat, Field(ge=0, lt=1)], Annotated[FiniteFloat, Field(ge=0, lt=1)]] = (
        Field((0.5, 0.999), strict=False)
    )
    ema_decay: FiniteFloat = Field(0.999, ge=0, lt=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 where the device gains."
    )
    compile: bool = Field(False, description="torch.compile G and D; the first steps are slower.")
    architecture: Architecture = Field(
        "dcgan",
        description="dcgan: Radford et al.'s strided convolutions. resnet: SNGAN-style residual blocks, "
        "spectral norm on every layer of D; slower per step than dcgan at equal base_channels "
        "(`bench/train_speed.py --architecture resnet` measures it).",
    )
    conditioning: Conditioning = Field(
        "input",
        description="How a conditional G takes the label: input, its embedding concatenated to z (the "
        "conditioning of every model trained before this field); batchnorm, every BatchNorm's scale and "
        "shift predicted from the embedding (SNGAN/BigGAN). `bench/conditioning.py` compares them "
        "(docs/benchmarks.md).",
    )
    augment: AugmentPolicy = Field(
        "none",
        description="DiffAugment of D's inputs, real and fake: translation, cutout, color, or a "
        "combination in that order. ada: all three, each with a probability p that rises while D is "
        "over-confident on the reals (see ada_target) and falls otherwise.",
    )
    ada_target: FiniteFloat = Field(
        0.6, ge=0, le=1, description="ada: the E[sign(D(real))] above which p rises."
    )
    ada_speed_images: int = Field(
        20_000, ge=1, le=10_000_000, description="ada: images over which p can move from 0 to 1."
    )
    r1_gamma: FiniteFloat = Field(
        0.0,
        ge=0,
        le=1000,
        description="R1 penalty γ/2·E‖∇D(real)‖² on D (Mescheder et al. 2018); 0: off.",
    )
    r1_every: int = Field(
        16, ge=1, le=1000, description="Lazy R1: applied every this many D updates, scaled to match."
    )
    d_steps: int = Field(1, ge=1, le=5, description="D updates per G update.")
    devices: int = Field(
        1,
        ge=1,
        le=MAX_TRAINING_DEVICES,
        description="Train on this many devices of the worker's host (DistributedDataParallel, one process "
        "per device; on a CPU worker, processes sharing its cores). `batch_size` is the global batch, split "
        "evenly: it must be a multiple of this. A job asking for more GPUs than its worker's host has fails "
        "with that reason. Not with `compile`. See docs/multi-device.md.",
    )
    checkpoint_every: int = Field(500, gt=0)
    sample_every: int = Field(250, gt=0)
    log_every: int = Field(10, gt=0)
    keep_checkpoints: int = Field(3, ge=1, le=1000)
    encoder_steps: int = Field(
        500, ge=0, le=1_000_000, description="Steps of the inversion encoder trained after the GAN; 0: none."
    )
    eval_every: int | None = Field(
        None,
        ge=0,
        description="Evaluate the EMA generator (FID, KID, precision/recall) every this many steps, and at "
        "the end of a run at least this long, writing a checkpoint there; 0: never. Default: sized to the "
        "worker's device (docs/quality.md): every 1,000 steps on a GPU; off on a CPU, where it would cost "
        "more than training.",
    )
    eval_samples: int | None = Field(
        None,
        ge=MIN_EVAL_SAMPLES,
        le=MAX_EVAL_SAMPLES,
        description="Generated images per evaluation during training. Default: 5,000 on a GPU, 500 on a "
        "CPU. FID falls as this grows: compare figures of equal sample counts only.",
    )

    @field_validator("devices")
    @classmethod
    def _splits_over_devices(cls, devices: int, info: ValidationInfo) -> int:
        """Named as `devices`' error: the global batch must split evenly, and compile is one device's."""
        batch_size = info.data.get("batch_size")
        if batch_size is not None and batch_size % devices:
            raise ValueError(f"batch_size {batch_size} does not split evenly over {devices} devices")
        if devices > 1 and info.data.get("compile"):
            raise ValueError("compile runs on one device only: leave it off with devices > 1")
        return devices


class GenerateRequest(WebhookFields):
    """Images from a model. One seed gives the same latent on any machine; `n` images from `seed` use
    seeds seed, seed+1, …, seed+n−1."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"n": 16, "seed": 7, "truncation": 1.0, "label": "3", "format": "png"}]
        },
    )

    n: int | None = Field(
        None, ge=1, le=MAX_IMAGES, description="Number of images (default 1, or len(seeds))."
    )
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="First seed; random when neither is given.")
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = Field(
        None, min_length=1, max_length=MAX_IMAGES, description="One seed per image, instead of `seed`."
    )
    truncation: FiniteFloat = Field(
        1.0, gt=0, le=1, description="ψ: latents are scaled by it toward the mean."
    )
    label: Label | None = Field(None, description="Class of every image (conditional models).")
    labels: list[Label] | None = Field(
        None, min_length=1, max_length=MAX_IMAGES, description="One class per image (conditional models)."
    )
    checkpoint: CheckpointRef | None = Field(
        None, description='A checkpoint step, "newest" (the default) or "best" (lowest FID).'
    )
    format: Literal["png", "json"] = Field("png", description="png: one image or a grid; json: base64 PNGs.")

    @model_validator(mode="after")
    def _consistent(self) -> GenerateRequest:
        if self.seed is not None and self.seeds is not None:
            raise ValueError("give `seed` or `seeds`, not both")
        if self.label is not None and self.labels is not None:
            raise ValueError("give `label` or `labels`, not both")
        count = self.count
        if self.seeds is not None and len(self.seeds) != count:
            raise ValueError(f"`seeds` has {len(self.seeds)} entries but n is {count}")
        if self.labels is not None and len(self.labels) != count:
            raise ValueError(f"`labels` has {len(self.labels)} entries but n is {count}")
        return self

    @property
    def count(self) -> int:
        if self.n is not None:
            return self.n
        return len(self.seeds or self.labels or [None])


# --- latents ---------------------------------------------------------------------------------------


class SeedLatent(StrictModel):
    seed: Seed = Field(description="The latent of one seed: the same vector on every machine.")


class SeedsLatent(StrictModel):
    seeds: list[Seed] = Field(min_length=1, max_length=64, description="The mean of these seeds' latents.")


class NamedLatent(StrictModel):
    name: LatentName = Field(description="A named latent saved with this model.")


class VectorLatent(StrictModel):
    vector: list[LatentValue] = Field(
        min_length=1,
        max_length=1024,
        description=f"Exactly latent_dim numbers, each within ±{MAX_LATENT_VALUE:g}.",
    )


LatentRef = SeedLatent | SeedsLatent | NamedLatent | VectorLatent
"""Where a latent comes from. The API resolves names before a job runs, so workers see the rest only."""


class SaveLatentRequest(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "smiling_woman", "latent": {"seeds": [3, 17, 42]}}]},
    )

    name: LatentName
    latent: LatentRef


class InterpolateRequest(WebhookFields):
    """Frames between two or more key latents: `steps` frames between each neighbouring pair."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"latents": [{"seed": 1}, {"seed": 2}], "steps": 8, "format": "gif"}]
        },
    )

    latents: list[LatentRef] = Field(min_length=2, max_length=16)
    steps: int = Field(8, ge=1, le=64)
    method: Literal["slerp", "lerp"] = "slerp"
    label: Label | None = Field(None, description="The class of every frame (conditional models).")
    labels: list[Label] | None = Field(
        None, description="One class per key latent: the condition is interpolated too (conditional models)."
    )
    truncation: FiniteFloat = Field(1.0, gt=0, le=1)
    checkpoint: CheckpointRef | None = None
    format: Literal["png", "gif", "json"] = Field(
        "png", description="png: a strip; gif: looping; json: frames."
    )

    @model_validator(mode="after")
    def _consistent(self) -> InterpolateRequest:
        if self.label is not None and self.labels is not None:
            raise ValueError("give `label` or `labels`, not both")
        if self.labels is not None and len(self.labels) != len(self.latents):
            raise ValueError(f"`labels` needs one label per key latent ({len(self.latents)})")
        check_frames(len(self.latents), self.steps, "latents", "steps")
        return self


class ArithmeticTerm(StrictModel):
    weight: FiniteFloat = Field(1.0, ge=-MAX_WEIGHT, le=MAX_WEIGHT)
    latent: LatentRef


class ArithmeticRequest(WebhookFields):
    """A weighted sum of latents, given as `terms` or as an `expression` over named latents, and
    optionally `variations` around the result with uniform noise in ±`noise`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"expression": "smiling_woman - neutral_woman + neutral_man", "variations": 8}]
        },
    )

    terms: list[ArithmeticTerm] | None = Field(None, min_length=1, max_length=32)
    expression: str | None = Field(None, min_length=1, max_length=500, examples=["a - b + 0.5*c"])
    variations: int = Field(0, ge=0, le=64, description="8 lays them out around the result, as in the paper.")
    noise: FiniteFloat = Field(0.25, gt=0, le=4)
    seed: Seed = Field(0, description="Seed of the variations' noise.")
    label: Label | None = None
    truncation: FiniteFloat = Field(1.0, gt=0, le=1)
    checkpoint: CheckpointRef | None = None
    format: Literal["png", "json"] = "png"

    @model_validator(mode="after")
    def _one_form(self) -> ArithmeticRequest:
        if (self.terms is None) == (self.expression is None):
            raise ValueError("give exactly one of `terms` or `expression`")
        return self


# --- evaluation ------------------------------------------------------------------------------------


class EvaluationRequest(WebhookFields):
    """Judge a checkpoint's EMA generator against its data set on Inception-v3 features."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"checkpoint": "newest", "samples": 5000, "metrics": ["fid", "kid", "precision_recall"]}
            ]
        },
    )

    checkpoint: CheckpointRef = Field("newest", description='A checkpoint step, "newest" or "best".')
    samples: int = Field(
        5000,
        ge=MIN_EVAL_SAMPLES,
        le=MAX_EVAL_SAMPLES,
        description="Generated images to judge. 5,000 or more for figures comparable with papers (10k, 50k).",
    )
    metrics: list[MetricName] = Field(
        default_factory=lambda: list(METRICS),
        min_length=1,
        max_length=len(METRICS),
        description="Which to compute; conditional models also get FID per class.",
    )


# --- export ----------------------------------------------------------------------------------------


class ExportRequest(WebhookFields):
    """A checkpoint's EMA generator as a file that runs without ganforge (docs/export.md)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"format": "onnx", "checkpoint": "newest"}]}
    )

    format: ExportFormat = Field(
        description="onnx: runs with onnxruntime (opset 18); torchscript: runs with `torch.jit.load`."
    )
    checkpoint: CheckpointRef = Field("newest", description='A checkpoint step, "newest" or "best".')
