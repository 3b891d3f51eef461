"""Where things live under GANFORGE_DATA_DIR, and their manifests. The files are the source of truth:
Redis can be flushed without losing a dataset or a model.

    datasets/{id}/manifest.json, images.npy, labels.npy
    datasets/{id}/features/       Inception features of the real images, per model size (evaluation)
    models/{id}/manifest.json, checkpoints/, samples/, metrics.jsonl, evaluations/
    uploads/                      archives being ingested (deleted afterwards)

Manifests are written atomically. Ids are checked against ID_PATTERN before they touch a path.
"""

from __future__ import annotations

import functools
import re
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path
from stat import S_ISREG
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workers.shared.atomic import atomic_write_text
from workers.shared.contract import ID_PATTERN, LATENT_NAME_PATTERN, TrainingSpec
from workers.shared.layout import (
    best_evaluation,
    checkpoint_path,
    checkpoint_steps,
    evaluation_path,
    read_evaluations,
    sample_path,
    sample_steps,
)
from workers.shared.spec import NetworkSpec

TrainingStatus = Literal["queued", "running", "completed", "canceled", "failed"]
FINISHED_STATUSES = ("completed", "canceled", "failed")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def training_job_id_for(model_id: str) -> str:
    """A training job and the model it makes share their random part: tj_x trains m_x."""
    return "tj_" + model_id.removeprefix("m_")


def model_id_for(training_job_id: str) -> str:
    return "m_" + training_job_id.removeprefix("tj_")


class SkippedFileRecord(BaseModel):
    path: str
    reason: str


class DatasetManifest(BaseModel):
    model_config = ConfigDict(frozen=True)  # shared between callers: see _read

    id: str
    name: str
    created_at: datetime
    count: int
    image_size: int
    channels: int
    labels: Literal["none", "folders", "csv", "builtin", "utkface"]
    classes: list[str] = Field(default_factory=list)
    class_counts: dict[str, int] = Field(default_factory=dict)
    skipped: list[SkippedFileRecord] = Field(default_factory=list)
    age_bins: list[int] | None = None


class ModelManifest(BaseModel):
    model_config = ConfigDict(frozen=True)  # shared between callers: see _read

    id: str
    name: str
    training_job_id: str
    created_at: datetime
    spec: TrainingSpec
    dataset_id: str
    image_size: int
    channels: int
    classes: list[str] = Field(default_factory=list)
    class_counts: dict[str, int] = Field(default_factory=dict, description="Training images per class.")
    status: TrainingStatus = "queued"
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    device: str | None = None
    owner: str = Field("local", description="The API key (its hash prefix) that started the training.")
    recoveries: int = Field(0, description="Times the job was queued again because its worker died.")

    @field_validator("spec", mode="before")
    @classmethod
    def _conditioned_as_trained(cls, spec: Any) -> Any:
        """A manifest written before `conditioning` existed is of a model whose G conditions its input,
        whatever the default for new specs is."""
        if isinstance(spec, dict) and "conditioning" not in spec:
            return {**spec, "conditioning": "input"}
        return spec

    @property
    def conditional(self) -> bool:
        return self.spec.conditional

    @property
    def network(self) -> NetworkSpec:
        """The shape of the model's networks: its spec on its dataset's images and classes."""
        return NetworkSpec(
            image_size=self.image_size,
            channels=self.channels,
            latent_dim=self.spec.latent_dim,
            base_channels=self.spec.base_channels,
            num_classes=len(self.classes) if self.conditional else 0,
            spectral_norm=self.spec.spectral_norm,
            architecture=self.spec.architecture,
            conditioning=self.spec.conditioning,
        )


class NamedLatentRecord(BaseModel):
    model_config = ConfigDict(frozen=True)  # shared between callers: see _read

    name: str
    latent: dict[str, Any] = Field(description='{"seed": s}, {"seeds": [...]} or {"vector": [...]}')
    source: str = Field(description="What it was made from: seed, seeds, vector, name or an inverted image.")
    created_at: datetime


class Storage:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- paths -------------------------------------------------------------------------------------
    def dataset_dir(self, dataset_id: str) -> Path:
        return self.root / "datasets" / _checked(dataset_id)

    def model_dir(self, model_id: str) -> Path:
        return self.root / "models" / _checked(model_id)

    def uploads_dir(self) -> Path:
        path = self.root / "uploads"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def checkpoint_steps(self, model_id: str) -> list[int]:
        return checkpoint_steps(self.model_dir(model_id))

    def checkpoint_file(self, model_id: str, step: int) -> Path:
        return checkpoint_path(self.model_dir(model_id), step)

    def sample_steps(self, model_id: str) -> list[int]:
        return sample_steps(self.model_dir(model_id))

    def sample_file(self, model_id: str, step: int) -> Path:
        return sample_path(self.model_dir(model_id), step)

    def evaluation_file(self, model_id: str, step: int, samples: int) -> Path:
        return evaluation_path(self.model_dir(model_id), step, samples)

    def evaluations(self, model_id: str) -> list[dict[str, Any]]:
        return read_evaluations(self.model_dir(model_id))

    def best_evaluation(self, model_id: str) -> dict[str, Any] | None:
        """The evaluation row of the model's best checkpoint still on disk
        (workers.shared.layout.best_evaluation)."""
        return best_evaluation(self.evaluations(model_id), self.checkpoint_steps(model_id))

    def real_features_file(self, dataset_id: str, image_size: int) -> Path:
        """Inception features of the data set's images at a model's size, computed once and kept."""
        return self.dataset_dir(dataset_id) / "features" / f"inception-{image_size}px.npz"

    # --- manifests ---------------------------------------------------------------------------------
    def read_dataset(self, dataset_id: str) -> DatasetManifest | None:
        return _read(self.dataset_dir(dataset_id) / "manifest.json", DatasetManifest)

    def list_datasets(self) -> list[DatasetManifest]:
        return _list(self.root / "datasets", DatasetManifest)

    def read_model(self, model_id: str) -> ModelManifest | None:
        return _read(self.model_dir(model_id) / "manifest.json", ModelManifest)

    def write_model(self, manifest: ModelManifest) -> None:
        _write(self.model_dir(manifest.id) / "manifest.json", manifest)

    def update_model(self, model_id: str, **changes: Any) -> ModelManifest:
        manifest = self.read_model(model_id)
        if manifest is None:
            raise FileNotFoundError(f"model {model_id} has no manifest")
        updated = manifest.model_copy(update=changes)
        self.write_model(updated)
        return updated

    def list_models(self) -> list[ModelManifest]:
        return _list(self.root / "models", ModelManifest)

    def latent_file(self, model_id: str, name: str) -> Path:
        if not re.fullmatch(LATENT_NAME_PATTERN, name):
            raise ValueError(f"not a valid latent name: {name!r}")
        return self.model_dir(model_id) / "latents" / f"{name}.json"

    def read_latent(self, model_id: str, name: str) -> NamedLatentRecord | None:
        return _read(self.latent_file(model_id, name), NamedLatentRecord)

    def write_latent(self, model_id: str, record: NamedLatentRecord) -> None:
        _write(self.latent_file(model_id, record.name), record)

    def list_latents(self, model_id: str) -> list[NamedLatentRecord]:
        folder = self.model_dir(model_id) / "latents"
        records = (_read(path, NamedLatentRecord) for path in sorted(folder.glob("*.json")))
        return [record for record in records if record is not None]

    def delete_tree(self, path: Path) -> None:
        """Remove a dataset or model folder: rename it out of the way first, so no reader ever sees a
        half-deleted folder under its id."""
        if not path.exists():
            return
        trash = path.with_name(f".deleting-{path.name}-{secrets.token_hex(4)}")
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def _checked(resource_id: str) -> str:
    if not re.fullmatch(ID_PATTERN, resource_id):
        raise ValueError(f"not a valid id: {resource_id!r}")
    return resource_id


def _read(path: Path, schema: type[BaseModel]) -> Any:
    """The manifest at `path`, or None. Parsed manifests are kept, keyed by the file's inode, mtime and
    size: manifests are only ever replaced whole (atomic_write_text: a new inode), so a changed file
    never matches a kept parse. Every generate request reads its model's manifest; this makes that a
    `stat`. The manifests are frozen, so callers share a parse without changing it for each other."""
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not S_ISREG(stat.st_mode):
        return None
    return _parse(path, schema, (stat.st_ino, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=512)
def _parse(path: Path, schema: type[BaseModel], version: tuple[int, int, int]) -> Any:
    return schema.model_validate_json(path.read_bytes())


def _write(path: Path, manifest: BaseModel) -> None:
    atomic_write_text(path, manifest.model_dump_json(indent=2))


def _list(folder: Path, schema: type[BaseModel]) -> list[Any]:
    if not folder.is_dir():
        return []
    manifests = (_read(path / "manifest.json", schema) for path in sorted(folder.iterdir()))
    return sorted((m for m in manifests if m is not None), key=lambda m: m.created_at)
