"""Model exports on disk: a record per export and, once it is verified, its file.

    models/{id}/exports/{export_id}.json        the record (ExportRecord)
    models/{id}/exports/{export_id}.onnx|.pt    the exported generator

The API writes the record when it queues the export (status `queued`); the export job
(workers.jobs.export) moves it to `running`, then `completed` with the file, or `failed` with the
reason. The verification's seeds and tolerance are workers.shared.export_format's.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from workers.shared.atomic import atomic_write_text
from workers.shared.contract import ID_PATTERN
from workers.shared.export_format import SUFFIXES, TOLERANCE, VERIFY_SEEDS, ExportFormat
from workers.shared.storage import Storage, utc_now

ExportStatus = Literal["queued", "running", "completed", "failed"]


class ExportRecord(BaseModel):
    """One export of a checkpoint's EMA generator. The file takes `z` (N, latent_dim) float32, and for
    conditional models `label` (N,) int64, the index of a label in `labels`; it returns `images`
    (N, channels, image_size, image_size) float32 in [-1, 1]."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The export's id, which is also its job's id (`GET /v1/jobs/{id}`).")
    model_id: str
    format: ExportFormat
    step: int = Field(description="The checkpoint's step; its EMA generator is exported, as generate uses.")
    status: ExportStatus
    created_at: datetime
    finished_at: datetime | None = None
    latent_dim: int = Field(description="The length of each row of the input `z`.")
    labels: list[str] = Field(
        description="The input `label` is an index into this list; empty for unconditional models, whose "
        "file takes `z` alone."
    )
    image_size: int
    channels: int
    file_bytes: int | None = Field(None, description="The file's size, once completed.")
    sha256: str | None = Field(None, description="The file's SHA-256 (hex), once completed.")
    verified_seeds: list[int] = Field(
        default_factory=lambda: list(VERIFY_SEEDS),
        description="Seeds on which the file's output was compared with PyTorch's.",
    )
    tolerance: float = Field(
        TOLERANCE,
        description="The largest difference allowed on any output value; above it, the export fails.",
    )
    max_difference: float | None = Field(
        None, description="The largest difference found between the file's output and PyTorch's."
    )
    error: str | None = Field(None, description="Why the export failed.")

    @computed_field(description="Where to download the file, once completed.")  # type: ignore[prop-decorator]
    @property
    def file_url(self) -> str | None:
        if self.status != "completed":
            return None
        return f"/v1/models/{self.model_id}/exports/{self.id}/file"

    @property
    def file_name(self) -> str:
        """The name a download is saved under."""
        return f"{self.model_id}-step-{self.step:06d}{SUFFIXES[self.format]}"


def exports_dir(storage: Storage, model_id: str) -> Path:
    return storage.model_dir(model_id) / "exports"


def record_path(storage: Storage, model_id: str, export_id: str) -> Path:
    return exports_dir(storage, model_id) / f"{_checked(export_id)}.json"


def file_path(storage: Storage, record: ExportRecord) -> Path:
    return exports_dir(storage, record.model_id) / f"{_checked(record.id)}{SUFFIXES[record.format]}"


def read_export(storage: Storage, model_id: str, export_id: str) -> ExportRecord | None:
    path = record_path(storage, model_id, export_id)
    return ExportRecord.model_validate_json(path.read_bytes()) if storage.refresh(path) else None


def write_export(storage: Storage, record: ExportRecord) -> ExportRecord:
    """The record, written and published to the store (after its file, when completed)."""
    path = record_path(storage, record.model_id, record.id)
    atomic_write_text(path, record.model_dump_json(indent=2))
    storage.publish(path)
    return record


def update_export(storage: Storage, record: ExportRecord, **changes: object) -> ExportRecord:
    """The record with `changes`, written; a finished status stamps `finished_at`."""
    if changes.get("status") in ("completed", "failed"):
        changes["finished_at"] = utc_now()
    return write_export(storage, record.model_copy(update=changes))


def list_exports(storage: Storage, model_id: str) -> list[ExportRecord]:
    """The model's exports, oldest first."""
    folder = exports_dir(storage, model_id)
    paths = [folder / name for name in storage.store.names(folder) if name.endswith(".json")]
    records = [ExportRecord.model_validate_json(path.read_bytes()) for path in paths if storage.refresh(path)]
    return sorted(records, key=lambda record: record.created_at)


def _checked(export_id: str) -> str:
    if not re.fullmatch(ID_PATTERN, export_id):
        raise ValueError(f"not a valid export id: {export_id!r}")
    return export_id
