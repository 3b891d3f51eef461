"""Datasets as the service keeps them: ingest an uploaded archive into `datasets/{id}/`, and the
built-in `digits` set. No torch: the API calls this.

A dataset is built in a hidden folder and renamed into place in one step, so a failed or interrupted
ingest leaves nothing under a dataset id.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from workers.shared.atomic import atomic_write_bytes
from workers.shared.datasets.archives import IngestLimits
from workers.shared.datasets.builtin import builtin_digits
from workers.shared.datasets.ingest import ingest_archive
from workers.shared.datasets.labels import LabelMode
from workers.shared.datasets.packed import PackedDataset, preview_png, write_packed
from workers.shared.storage import DatasetManifest, SkippedFileRecord, Storage, new_id, utc_now

BUILTIN_DIGITS_ID = "digits"
PREVIEW_FILE = "preview.png"


def ingest_upload(
    storage: Storage,
    archive: Path,
    *,
    name: str,
    image_size: int,
    channels: int,
    labels: LabelMode,
    limits: IngestLimits,
    age_bins: Sequence[int] | None = None,
) -> DatasetManifest:
    """Decode and pack the archive's images; raises DatasetError (workers.shared.datasets.errors) when it
    is unusable. `age_bins` (lower edges) buckets ages for labels=utkface or a labels.csv with an age
    column; the edges used are recorded in the manifest."""

    def pack(staging: Path) -> PackedDataset:
        return ingest_archive(
            archive,
            image_size=image_size,
            channels=channels,
            labels=labels,
            limits=limits,
            age_bins=age_bins,
            directory=staging,
        )

    return _store(storage, new_id("ds"), name or archive.name, labels, pack)


def ensure_builtin_datasets(storage: Storage) -> None:
    """Create `digits` (scikit-learn's labelled 8×8 digits, upsampled to 32 px) if it is missing.
    Several API processes starting together (`uvicorn --workers N`) may race here: the first rename
    wins, and the others drop their copy."""
    if storage.read_dataset(BUILTIN_DIGITS_ID) is not None:
        return
    try:
        _store(
            storage,
            BUILTIN_DIGITS_ID,
            "scikit-learn digits (built in)",
            "builtin",
            _written(builtin_digits(32)),
        )
    except OSError:
        if storage.read_dataset(BUILTIN_DIGITS_ID) is None:  # not a lost race: a real failure
            raise


def _written(packed: PackedDataset) -> Callable[[Path], PackedDataset]:
    """A `pack` for _store of a set already in memory."""

    def write(staging: Path) -> PackedDataset:
        write_packed(packed, staging)
        return packed

    return write


def _store(
    storage: Storage, dataset_id: str, name: str, labels: str, pack: Callable[[Path], PackedDataset]
) -> DatasetManifest:
    """A dataset whose packed files `pack` writes into the staging folder it is given."""
    final = storage.dataset_dir(dataset_id)
    staging = final.with_name(f".incoming-{dataset_id}-{secrets.token_hex(4)}")
    staging.mkdir(parents=True)
    try:
        packed = pack(staging)
        manifest = _manifest(dataset_id, name, labels, packed)
        atomic_write_bytes(staging / PREVIEW_FILE, preview_png(packed.images))
        atomic_write_bytes(staging / "manifest.json", manifest.model_dump_json(indent=2).encode())
        staging.rename(final)
    except BaseException:
        storage.delete_tree(staging)
        raise
    try:
        storage.publish_tree(final)
    except BaseException:
        storage.delete_tree(final)  # not kept where only this process would see it
        raise
    return manifest


def _manifest(dataset_id: str, name: str, labels: str, packed: PackedDataset) -> DatasetManifest:
    counts = Counter(packed.labels.tolist()) if packed.labels is not None else Counter()
    return DatasetManifest(
        id=dataset_id,
        name=name,
        created_at=utc_now(),
        count=len(packed.images),
        image_size=packed.images.shape[-1],
        channels=packed.images.shape[1],
        labels=labels,
        classes=packed.classes,
        class_counts={label: counts[index] for index, label in enumerate(packed.classes)},
        skipped=[SkippedFileRecord(path=item.path, reason=item.reason) for item in packed.skipped],
        age_bins=packed.age_bins,
    )
