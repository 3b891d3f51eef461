"""The export job (POST /v1/models/{id}/exports): a checkpoint's EMA generator as an ONNX or TorchScript
file, verified against PyTorch before it is kept (models.export), its record updated as it goes
(workers.shared.exports)."""

from __future__ import annotations

import hashlib
from typing import Any

from models.export import export_generator, verify_export
from workers.jobs.runtime import current_runtime
from workers.shared.atomic import atomic_write_bytes
from workers.shared.exports import ExportRecord, file_path, read_export, update_export
from workers.shared.storage import Storage


class ExportMismatch(Exception):
    """The exported file's images differ from PyTorch's by more than the tolerance."""


def export_model(model_id: str, export_id: str) -> dict[str, Any]:
    """Export, verify and keep the file of export `export_id`; returns the completed record. Any failure
    is written to the record before the job fails with it."""
    runtime = current_runtime()
    storage = runtime.storage
    record = read_export(storage, model_id, export_id)
    if record is None:
        raise FileNotFoundError(f"model {model_id} has no export {export_id}")
    record = update_export(storage, record, status="running")
    try:
        generator = runtime.generator(model_id, record.step)
        data = export_generator(generator, record.format)
        difference = verify_export(generator, data, record.format)
    except Exception as error:
        update_export(storage, record, status="failed", error=f"{type(error).__name__}: {error}")
        raise
    return keep_verified(storage, record, data, difference).model_dump(mode="json")


def keep_verified(storage: Storage, record: ExportRecord, data: bytes, difference: float) -> ExportRecord:
    """Store the file and complete the record when `difference` is within the record's tolerance; else
    fail the record (no file is kept) and raise ExportMismatch."""
    if difference > record.tolerance:
        reason = f"the exported generator differs from PyTorch's by {difference:.3g} > {record.tolerance:g}"
        update_export(storage, record, status="failed", max_difference=difference, error=reason)
        raise ExportMismatch(reason)
    atomic_write_bytes(file_path(storage, record), data)
    storage.publish(file_path(storage, record))
    return update_export(
        storage,
        record,
        status="completed",
        max_difference=difference,
        file_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
