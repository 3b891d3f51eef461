"""Work budgets checked before anything is queued, and values the schema accepts that used to end in a
500: each a 4xx naming the field (and the cap), with nothing queued or stored. Real app and Redis, no
worker (work that passes is asked for with `Prefer: respond-async` and left queued)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from tests.archives import png, zip_bytes
from workers.shared.settings import get_settings
from workers.shared.storage import ModelManifest, Storage, new_id

ASYNC = {"Prefer": "respond-async"}
CONDITIONAL = {"label": "a"}


def locations(response) -> list[list]:
    detail = response.json()["detail"]
    return [item["loc"] for item in detail] if isinstance(detail, list) else []


def sampling_jobs(redis: Redis) -> int:
    return redis.llen("rq:queue:sampling")


@pytest.fixture
def model(conditional_model: ModelManifest) -> str:
    return conditional_model.id


@pytest.fixture
def large_model(client: TestClient, conditional_model: ModelManifest, storage: Storage) -> str:
    """The conditional model's manifest at 128 px (no checkpoint: the budgets are checked first)."""
    large = conditional_model.model_copy(update={"id": new_id("m"), "image_size": 128})
    storage.write_model(large)
    return large.id


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch):
    """configure(GANFORGE_…="…"): the running app reads settings with these from the next request on."""

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


# --- products of lists and counts ----------------------------------------------------------------------


def test_interpolation_frames_are_capped_on_the_product(client: TestClient, model: str, redis: Redis) -> None:
    path = f"/v1/models/{model}/interpolate"
    keys = [{"seed": seed} for seed in range(16)]
    over = client.post(path, json={"latents": keys, "steps": 64, **CONDITIONAL})
    assert over.status_code == 422
    assert "latents × steps is over budget" in over.text and "976 frames; at most 256" in over.text
    assert sampling_jobs(redis) == 0
    at_cap = client.post(path, json={"latents": keys[:6], "steps": 50, **CONDITIONAL}, headers=ASYNC)
    assert at_cap.status_code == 202, at_cap.text


def test_transform_frames_are_capped_on_the_product(client: TestClient, model: str, redis: Redis) -> None:
    path = f"/v1/models/{model}/transform"
    image = {"image": ("x.png", png(1))}
    nine = {"source_label": "a", "target_labels": ",".join("ab" * 4 + "a"), "steps_between": "32"}
    over = client.post(path, files=image, data=nine)
    assert over.status_code == 422 and locations(over) == [["body", "target_labels"]]
    assert "target_labels × steps_between is over budget" in over.text and "265 frames" in over.text
    endless = client.post(
        path, files=image, data={"source_label": "a", "target_labels": ",".join(["a"] * 50_000)}
    )
    assert endless.status_code == 422 and "50000 target_labels" in endless.text
    assert sampling_jobs(redis) == 0
    eight = {**nine, "target_labels": ",".join("ab" * 4)}  # 8 + 7 × 32 = 232 frames
    assert client.post(path, files=image, data=eight, headers=ASYNC).status_code == 202


def test_optimisation_steps_are_capped_by_the_models_pixels(client: TestClient, large_model: str) -> None:
    image = {"image": ("x.png", png(1))}
    invert = client.post(f"/v1/models/{large_model}/invert", files=image, data={"label": "a", "steps": "501"})
    assert invert.status_code == 422 and locations(invert) == [["body", "steps"]]
    assert "at most 500 steps at this size" in invert.text
    transform = client.post(
        f"/v1/models/{large_model}/transform",
        files=image,
        data={"source_label": "a", "optimise_steps": "501"},
    )
    assert transform.status_code == 422 and locations(transform) == [["body", "optimise_steps"]]
    within = client.post(f"/v1/models/{large_model}/invert", files=image, data={"label": "a", "steps": "500"})
    assert (
        within.status_code == 409 and "no checkpoint" in within.text
    )  # past the budget, on to the next check


# --- overwriting by name ---------------------------------------------------------------------------------


def test_save_as_needs_replace_to_overwrite_a_name(client: TestClient, model: str, redis: Redis) -> None:
    assert (
        client.post(f"/v1/models/{model}/latents", json={"name": "taken", "latent": {"seed": 1}}).status_code
        == 201
    )
    image = {"image": ("x.png", png(1))}
    invert, transform = f"/v1/models/{model}/invert", f"/v1/models/{model}/transform"
    requests = [
        (invert, {"files": image, "data": {"label": "a", "save_as": "taken"}}),
        (transform, {"data": {"latent": "taken", "source_label": "a", "save_as": "taken"}}),
    ]
    for path, form in requests:
        refused = client.post(path, **form)
        assert refused.status_code == 409 and "'taken'" in refused.text and "replace=true" in refused.text
    assert sampling_jobs(redis) == 0
    for path, form in requests:
        replacing = {**form, "data": {**form["data"], "replace": "true"}}
        assert client.post(path, **replacing, headers=ASYNC).status_code == 202
    free = client.post(invert, files=image, data={"label": "a", "save_as": "free"}, headers=ASYNC)
    assert free.status_code == 202


# --- numbers that overflow float32 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("latents", {"name": "x", "latent": {"vector": [1e300] + [0.0] * 7}}, "vector"),
        ("latents", {"name": "x", "latent": {"vector": [3e38] * 8}}, "vector"),  # finite, its norm is not
        ("interpolate", {"latents": [{"vector": [1e30] * 8}, {"seed": 1}], **CONDITIONAL}, "vector"),
        ("arithmetic", {"terms": [{"weight": 1e300, "latent": {"seed": 1}}], **CONDITIONAL}, "weight"),
        ("arithmetic", {"expression": "1e300*a - b", **CONDITIONAL}, "expression"),
    ],
)
def test_numbers_beyond_float32_are_422(
    client: TestClient, model: str, redis: Redis, route: str, body: dict, field: str
) -> None:
    response = client.post(f"/v1/models/{model}/{route}", json=body)
    assert response.status_code == 422, response.text
    assert any(field in loc for loc in locations(response)), locations(response)
    assert "1000" in response.text  # the cap
    assert sampling_jobs(redis) == 0


# --- uploads ---------------------------------------------------------------------------------------------


def test_long_file_names_do_not_become_dataset_names(client: TestClient) -> None:
    archive = zip_bytes({"a.png": png(1)})
    long_name = "x" * 300 + ".zip"
    refused = client.post("/v1/datasets", files={"file": (long_name, archive)})
    assert refused.status_code == 422 and locations(refused) == [["body", "file"]]
    assert "longer than 100 characters" in refused.text
    named = client.post("/v1/datasets", files={"file": (long_name, archive)}, data={"name": "short"})
    assert named.status_code == 201 and named.json()["name"] == "short"


def test_archive_decoding_past_the_limit_is_413(client: TestClient, storage: Storage, configure) -> None:
    configure(GANFORGE_MAX_DATASET_BYTES=str(64 * 2**10))
    before = sorted(path.name for path in (storage.root / "datasets").iterdir())
    tiny = zip_bytes(
        {f"{index}.png": png(index, size=1) for index in range(30)}
    )  # 30 × 3 × 32² bytes decoded
    response = client.post("/v1/datasets", files={"file": ("set.zip", tiny)}, data={"image_size": "32"})
    assert response.status_code == 413 and locations(response) == [["body", "file"]]
    assert "would decode to 92,160 bytes, over the limit of 64 KiB decoded" in response.text
    assert sorted(path.name for path in (storage.root / "datasets").iterdir()) == before
    assert list((storage.root / "uploads").iterdir()) == []


# --- training memory -------------------------------------------------------------------------------------


def test_training_that_no_worker_can_hold_is_422_with_the_estimate(client: TestClient, configure) -> None:
    configure(GANFORGE_WORKER_MEMORY_MB="1024")
    huge = {"dataset_id": "digits", "architecture": "resnet", "base_channels": 512, "image_size": 128}
    response = client.post("/v1/training-jobs", json={**huge, "batch_size": 4096})
    assert response.status_code == 422 and locations(response) == [["body", "batch_size"]]
    message = response.json()["detail"][0]["msg"]
    assert "needs about" in message and "activations" in message and "GiB" in message
    assert "1.0 GiB a worker has (GANFORGE_WORKER_MEMORY_MB)" in message
    assert client.get("/v1/models").json()["models"] == []
    networks = client.post("/v1/training-jobs", json={**huge, "batch_size": 2})
    assert networks.status_code == 422 and locations(networks) == [["body", "base_channels"]]
    assert client.post("/v1/training-jobs", json={"dataset_id": "digits"}).status_code == 202
