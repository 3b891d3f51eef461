from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api.hostile import dataset_ids, on_disk
from workers.shared.contract import TrainingSpec
from workers.shared.settings import get_settings
from workers.shared.storage import ModelManifest, Storage, new_id, training_job_id_for, utc_now

# schemathesis 4.32+ needs Python 3.11, so the dev extra leaves it out on 3.10, and its test with it.
collect_ignore = ["test_schemathesis.py"] if sys.version_info < (3, 11) else []


LOOPBACK = ("127.0.0.1", 50000)
"""A TestClient's client address. Starlette's own, "testclient", is not on this machine (app.locality)."""


@pytest.fixture
def client(service_env, redis) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1", client=LOOPBACK) as test_client:
        yield test_client


@pytest.fixture
def storage(service_env) -> Storage:
    return Storage(Path(get_settings().data_dir))


def make_model(storage: Storage, classes: list[str], with_checkpoint: bool = True) -> ModelManifest:
    """A tiny model written straight to disk, trained for one step in this process (no worker)."""
    spec = TrainingSpec(
        dataset_id="digits", conditional=bool(classes), latent_dim=8, base_channels=4, steps=1
    )
    model_id = new_id("m")
    manifest = ModelManifest(
        id=model_id,
        name="tiny",
        training_job_id=training_job_id_for(model_id),
        created_at=utc_now(),
        spec=spec,
        dataset_id="digits",
        image_size=32,
        channels=1,
        classes=classes,
        status="completed" if with_checkpoint else "queued",
    )
    storage.write_model(manifest)
    if with_checkpoint:
        pytest.importorskip("torch")  # scripts/test-floor runs these tests without torch
        from models.networks import NetworkSpec
        from models.run import Schedule, run_training
        from models.training import TrainConfig, Trainer

        network = NetworkSpec(
            image_size=32, channels=1, latent_dim=8, base_channels=4, num_classes=len(classes)
        )
        images = np.zeros((4, 1, 32, 32), np.uint8)
        labels = np.arange(4) % max(len(classes), 1)
        trainer = Trainer(TrainConfig(network=network, batch_size=4, steps=1), images, labels)
        run_training(trainer, storage.model_dir(model_id), Schedule(steps=1))
    return manifest


@pytest.fixture
def conditional_model(storage: Storage) -> ModelManifest:
    return make_model(storage, ["a", "b"])


@pytest.fixture
def unconditional_model(storage: Storage) -> ModelManifest:
    return make_model(storage, [])


@pytest.fixture
def unchanged(client: TestClient, storage: Storage) -> Iterator[Callable[[], None]]:
    """Call it after a rejected request: the dataset list and the files on disk are as they were."""
    before_ids, before_disk = dataset_ids(client), on_disk(storage)

    def check() -> None:
        assert dataset_ids(client) == before_ids
        after = on_disk(storage)
        assert after == before_disk, after
        assert not [name for name in after["datasets"] if name.startswith(".")]  # no .incoming-*
        assert after["uploads"] == []

    yield check


@pytest.fixture
def limited(service_env, redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., TestClient]]:
    """limited(GANFORGE_MAX_UPLOAD_BYTES="65536", ...) → a client of an app built with those settings."""
    from app.main import create_app

    clients: list[TestClient] = []

    def build(**env: str) -> TestClient:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        client = TestClient(create_app(), base_url="http://127.0.0.1", client=LOOPBACK)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)
