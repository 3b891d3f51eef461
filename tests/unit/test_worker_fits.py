"""A training worker checks a job against its own memory before it builds anything: the API checked the
spec against what workers declare, but only the worker knows its device. Real Redis, real storage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workers.jobs.runtime import current_runtime
from workers.jobs.training import train_model
from workers.shared.contract import TrainingSpec
from workers.shared.datasets.store import ensure_builtin_datasets
from workers.shared.footprint import DoesNotFit
from workers.shared.settings import get_settings
from workers.shared.storage import ModelManifest, Storage, new_id, training_job_id_for, utc_now


@pytest.fixture
def storage(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    monkeypatch.setenv("GANFORGE_WORKER_MEMORY_MB", "1")  # a worker far smaller than the API was told
    get_settings.cache_clear()
    current_runtime.cache_clear()
    storage = Storage(get_settings().data_dir)
    ensure_builtin_datasets(storage)
    yield storage
    current_runtime.cache_clear()


def test_a_job_the_worker_cannot_hold_fails_with_the_estimate(storage: Storage) -> None:
    model = new_id("m")
    spec = TrainingSpec(dataset_id="digits", base_channels=64, batch_size=64, steps=4, encoder_steps=0)
    storage.write_model(
        ModelManifest(
            id=model,
            name="too big",
            training_job_id=training_job_id_for(model),
            created_at=utc_now(),
            spec=spec,
            dataset_id="digits",
            image_size=32,
            channels=1,
        )
    )
    with pytest.raises(DoesNotFit):
        train_model(model)
    failed = storage.read_model(model)
    assert failed.status == "failed"
    assert "more than the 0.0 GiB this worker has (GANFORGE_WORKER_MEMORY_MB" in failed.error
    assert failed.error.startswith("training this spec needs about")
    assert storage.checkpoint_steps(model) == []
