"""workers.shared.storage keeps parsed manifests keyed by the file's identity: a rewritten manifest must
be read afresh at once, however small the change."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from workers.shared.contract import TrainingSpec
from workers.shared.storage import ModelManifest, Storage, utc_now


def manifest(model_id: str = "m_cache") -> ModelManifest:
    return ModelManifest(
        id=model_id,
        name="cache",
        training_job_id="tj_cache",
        created_at=utc_now(),
        spec=TrainingSpec(dataset_id="digits", image_size=32, steps=10),
        dataset_id="digits",
        image_size=32,
        channels=1,
    )


def test_a_rewritten_manifest_is_read_afresh_even_at_the_same_size(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.write_model(manifest())
    assert storage.read_model("m_cache").status == "queued"
    size = (storage.model_dir("m_cache") / "manifest.json").stat().st_size
    for status in ("failed", "queued", "failed"):  # "queued" and "failed": the same length
        storage.update_model("m_cache", status=status)
        assert (storage.model_dir("m_cache") / "manifest.json").stat().st_size == size
        assert storage.read_model("m_cache").status == status


def test_a_deleted_manifest_reads_as_none(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.write_model(manifest())
    assert storage.read_model("m_cache") is not None
    (storage.model_dir("m_cache") / "manifest.json").unlink()
    assert storage.read_model("m_cache") is None


def test_read_manifests_cannot_be_changed_in_place(tmp_path: Path) -> None:
    """Callers share one parse, so changing one would change every caller's."""
    storage = Storage(tmp_path)
    storage.write_model(manifest())
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        storage.read_model("m_cache").status = "failed"
    assert storage.read_model("m_cache").status == "queued"
