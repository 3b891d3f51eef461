"""Where things live under GANFORGE_DATA_DIR, and their manifests. The files are the source of truth:
Redis can be flushed without losing a dataset or a model.

    datasets/{id}/manifest.json, images.npy, labels.npy
    datasets/{id}/features/       Inception features of the real images, per model size (evaluation)
    models/{id}/manifest.json, checkpoints/, samples/, metrics.jsonl, evaluations/
    uploads/                      archives being ingested (deleted afterwards)

Manifests are written atomically. Ids are checked against ID_PATTERN before they touch a path.

Where the files are kept is the `Store`'s business (workers.shared.object_store): the root itself by
default, or a bucket (GANFORGE_STORAGE_URL) with the root as this process's cache. Every read here asks
the store first and every write publishes to it, objects before the manifest that names them.
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
from workers.shared.datasets.packed import IMAGES_FILE, LABELS_FILE
from workers.shared.layout import (
    best_evaluation,
    checkpoint_path,
    encoder_path,
    evaluation_path,
    last_metrics,
    metrics_path,
    read_evaluations,
    read_metrics,
    sample_path,
    steps_named,
)
from workers.shared.object_store import Store, open_store
from workers.shared.settings import Settings
from workers.shared.spec import NetworkSpec
from workers.shared.webhook_urls import ALREADY_CHECKED

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
    def __init__(self, root: Path, store: Store | None = None):
        self.root = Path(root)
        self.store = store or Store(self.root)
        self._published: dict[Path, tuple[int, int]] = {}  # what publish_run sent: (mtime, size)

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
        return steps_named(self.store.names(self.model_dir(model_id) / "checkpoints"), "pt")

    def checkpoint_file(self, model_id: str, step: int) -> Path:
        return checkpoint_path(self.model_dir(model_id), step)

    def sample_steps(self, model_id: str) -> list[int]:
        return steps_named(self.store.names(self.model_dir(model_id) / "samples"), "png")

    def sample_file(self, model_id: str, step: int) -> Path:
        return sample_path(self.model_dir(model_id), step)

    def evaluation_file(self, model_id: str, step: int, samples: int) -> Path:
        return evaluation_path(self.model_dir(model_id), step, samples)

    def evaluations(self, model_id: str) -> list[dict[str, Any]]:
        folder = self.model_dir(model_id) / "evaluations"
        if self.store.remote:
            for name in self.store.names(folder):
                self.store.refresh(folder / name)
        return read_evaluations(self.model_dir(model_id))

    def metrics(self, model_id: str) -> list[dict[str, Any]]:
        """The rows of the model's metrics.jsonl, oldest first."""
        self.store.refresh(metrics_path(self.model_dir(model_id)))
        return read_metrics(self.model_dir(model_id))

    def last_metrics(self, model_id: str) -> dict[str, Any] | None:
        self.store.refresh(metrics_path(self.model_dir(model_id)))
        return last_metrics(self.model_dir(model_id))

    def has_encoder(self, model_id: str) -> bool:
        return encoder_path(self.model_dir(model_id)).name in self.store.names(self.model_dir(model_id))

    def best_evaluation(self, model_id: str) -> dict[str, Any] | None:
        """The evaluation row of the model's best checkpoint still on disk
        (workers.shared.layout.best_evaluation)."""
        return best_evaluation(self.evaluations(model_id), self.checkpoint_steps(model_id))

    def real_features_file(self, dataset_id: str, image_size: int) -> Path:
        """Inception features of the data set's images at a model's size, computed once and kept."""
        return self.dataset_dir(dataset_id) / "features" / f"inception-{image_size}px.npz"

    # --- manifests ---------------------------------------------------------------------------------
    def read_dataset(self, dataset_id: str) -> DatasetManifest | None:
        return self._read(self.dataset_dir(dataset_id) / "manifest.json", DatasetManifest)

    def list_datasets(self) -> list[DatasetManifest]:
        return self._list(self.root / "datasets", DatasetManifest)

    def read_model(self, model_id: str) -> ModelManifest | None:
        return self._read(self.model_dir(model_id) / "manifest.json", ModelManifest)

    def write_model(self, manifest: ModelManifest) -> None:
        self._write(self.model_dir(manifest.id) / "manifest.json", manifest)

    def update_model(self, model_id: str, **changes: Any) -> ModelManifest:
        manifest = self.read_model(model_id)
        if manifest is None:
            raise FileNotFoundError(f"model {model_id} has no manifest")
        updated = manifest.model_copy(update=changes)
        self.write_model(updated)
        return updated

    def list_models(self) -> list[ModelManifest]:
        return self._list(self.root / "models", ModelManifest)

    def latent_file(self, model_id: str, name: str) -> Path:
        if not re.fullmatch(LATENT_NAME_PATTERN, name):
            raise ValueError(f"not a valid latent name: {name!r}")
        return self.model_dir(model_id) / "latents" / f"{name}.json"

    def read_latent(self, model_id: str, name: str) -> NamedLatentRecord | None:
        return self._read(self.latent_file(model_id, name), NamedLatentRecord)

    def write_latent(self, model_id: str, record: NamedLatentRecord) -> None:
        self._write(self.latent_file(model_id, record.name), record)

    def delete_latent(self, model_id: str, name: str) -> bool:
        """Whether the model had the named latent (which is now gone)."""
        path = self.latent_file(model_id, name)
        if not self.store.refresh(path):
            return False
        self.store.delete(path)
        path.unlink(missing_ok=True)
        return True

    def list_latents(self, model_id: str) -> list[NamedLatentRecord]:
        folder = self.model_dir(model_id) / "latents"
        names = sorted(name for name in self.store.names(folder) if name.endswith(".json"))
        records = (self._read(folder / name, NamedLatentRecord) for name in names)
        return [record for record in records if record is not None]

    def delete_tree(self, path: Path) -> None:
        """Remove a dataset or model folder: from the store (its manifest first), then here, renamed out
        of the way first, so no reader ever sees a half-deleted folder under its id."""
        self.store.delete_tree(path)
        if not path.exists():
            return
        trash = path.with_name(f".deleting-{path.name}-{secrets.token_hex(4)}")
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    # --- files kept in the store ----------------------------------------------------------------------
    def fetch(self, path: Path) -> bool:
        """Whether the immutable file at `path` (a checkpoint, a picture) is in the store; if so it is
        here now, fetched once into this process's cache."""
        return self.store.fetch(path)

    def refresh(self, path: Path) -> bool:
        """Whether the mutable file at `path` is in the store; if so, the local copy is its newest."""
        return self.store.refresh(path)

    def publish(self, *paths: Path) -> None:
        """Send files written here to the store, in this order (a manifest last)."""
        for path in paths:
            self.store.publish(path)

    def publish_tree(self, folder: Path) -> None:
        """Every file of a new dataset or model folder, its manifest last."""
        files = sorted((path for path in folder.rglob("*") if path.is_file()), key=_manifest_last)
        self.publish(*files)

    def dataset_files(self, dataset_id: str) -> Path:
        """The dataset's folder, with its packed images (and labels) here. FileNotFoundError, naming the
        file, when the store lacks the images: the dataset was deleted."""
        folder = self.dataset_dir(dataset_id)
        if not self.store.fetch(folder / IMAGES_FILE):
            where = self.store.describe()
            raise FileNotFoundError(f"dataset {dataset_id}: {IMAGES_FILE} is not in the store {where}")
        self.store.fetch(folder / LABELS_FILE)  # absent for an unlabelled set
        return folder

    def pull_run(self, model_id: str) -> None:
        """Bring a run's files here to resume it: its metrics, evaluation rows, encoder and newest
        checkpoint. (A host that ran it before may already hold a newer checkpoint than the store:
        one written before the host died, not yet published; the run resumes from that one.)"""
        if not self.store.remote:
            return
        run = self.model_dir(model_id)
        self.store.refresh(metrics_path(run))
        self.evaluations(model_id)
        self.store.fetch(encoder_path(run))
        steps = self.checkpoint_steps(model_id)
        if steps:
            self.store.fetch(checkpoint_path(run, steps[-1]))

    def publish_run(self, model_id: str, keep_checkpoints: int) -> None:
        """Send a training run's new and changed files to the store (not its manifest, latents or exports,
        which are published where they are written), then delete all but the newest `keep_checkpoints`
        checkpoints there (0 keeps all), and the best by FID (models.checkpoints prunes the local ones)."""
        if not self.store.remote:
            return
        run = self.model_dir(model_id)
        for path in sorted(run.rglob("*")):
            relative = path.relative_to(run).parts
            if relative[0] in ("manifest.json", "latents", "exports") or path.name.startswith("."):
                continue
            if not path.is_file():
                continue
            stat = path.stat()
            if self._published.get(path) != (stat.st_mtime_ns, stat.st_size):
                self.store.publish(path)
                self._published[path] = (stat.st_mtime_ns, stat.st_size)
        if keep_checkpoints > 0:
            best = self.best_evaluation(model_id)
            for step in self.checkpoint_steps(model_id)[:-keep_checkpoints]:
                if best is None or step != best["step"]:
                    self.store.delete(checkpoint_path(run, step))

    # --- manifests, through the store -------------------------------------------------------------------
    def _read(self, path: Path, schema: type[BaseModel]) -> Any:
        if self.store.remote:
            self.store.refresh(path)
        return _read(path, schema)

    def _write(self, path: Path, manifest: BaseModel) -> None:
        _write(path, manifest)
        self.store.publish(path)

    def _list(self, folder: Path, schema: type[BaseModel]) -> list[Any]:
        names = sorted(self.store.folders(folder))
        manifests = (self._read(folder / name / "manifest.json", schema) for name in names)
        return sorted((m for m in manifests if m is not None), key=lambda m: m.created_at)


@functools.cache
def _opened(url: str, root: Path, cache_bytes: int) -> Storage:
    return Storage(root, open_store(url, root, cache_bytes))


def open_storage(settings: Settings) -> Storage:
    """This process's Storage for `settings`: one per process, since it holds the store's client and
    its cache. With a bucket, the root is the cache directory (GANFORGE_CACHE_DIR)."""
    if not settings.storage_url:
        return _opened("", settings.data_dir, 0)
    root = settings.cache_dir or settings.data_dir / "store-cache"
    return _opened(settings.storage_url, root, settings.cache_mb * 2**20)


def _manifest_last(path: Path) -> bool:
    return path.name == "manifest.json"


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
    return schema.model_validate_json(path.read_bytes(), context=ALREADY_CHECKED)


def _write(path: Path, manifest: BaseModel) -> None:
    atomic_write_text(path, manifest.model_dump_json(indent=2))
