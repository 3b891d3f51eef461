"""What a client may keep in Redis, and what happens when Redis is full: caps per client (the local one
included) answered with 429, and Redis at its maxmemory answered with 503 and nothing left half-made.
The API against the test Redis, no worker: queued work stays queued."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis

import app.holdings
from workers.shared.generate_lane import job_key
from workers.shared.settings import get_settings

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    get_settings.cache_clear()


def setting(limits: pytest.MonkeyPatch, name: str, value: str) -> None:
    limits.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture
def full_redis(redis: Redis) -> Iterator[Redis]:
    """The test Redis at its memory limit: every write that needs memory is refused (OOM)."""
    before = redis.config_get("maxmemory")["maxmemory"]
    redis.config_set("maxmemory", 1)
    yield redis
    redis.config_set("maxmemory", before)


def test_the_local_client_has_the_concurrent_training_limit(client: TestClient, limits) -> None:
    setting(limits, "GANFORGE_MAX_CONCURRENT_JOBS", "2")
    for _ in range(2):
        assert client.post("/v1/training-jobs", json={"dataset_id": "digits"}).status_code == 202
    refused = client.post("/v1/training-jobs", json={"dataset_id": "digits"})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert "GANFORGE_MAX_CONCURRENT_JOBS" in refused.json()["detail"]
    assert len(client.get("/v1/training-jobs").json()["training_jobs"]) == 2


def test_queued_jobs_and_kept_results_are_capped_per_client(
    client: TestClient, conditional_model, redis: Redis, limits
) -> None:
    setting(limits, "GANFORGE_MAX_HELD_JOBS", "3")
    limits.setattr(app.holdings, "CLAIM_GRACE_SECONDS", 0)  # a gone record frees its place at once
    model = conditional_model.id
    interpolate = {"latents": [{"seed": 1}, {"seed": 2}], "steps": 2, "label": "a"}
    held = [
        client.post(f"/v1/models/{model}/generate", json={"seed": 1}, headers=ASYNC),
        client.post(f"/v1/models/{model}/generate", json={"seed": 2}, headers=ASYNC),
        client.post(f"/v1/models/{model}/interpolate", json=interpolate, headers=ASYNC),
    ]
    assert [response.status_code for response in held] == [202, 202, 202]
    queued = redis.llen("ganforge:generate:queue"), redis.llen("rq:queue:sampling")

    for refused in (
        client.post(f"/v1/models/{model}/generate", json={"seed": 3}, headers=ASYNC),
        client.post(f"/v1/models/{model}/interpolate", json=interpolate, headers=ASYNC),
    ):
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        assert "GANFORGE_MAX_HELD_JOBS" in refused.json()["detail"] and "(limit 3" in refused.json()["detail"]
    assert (redis.llen("ganforge:generate:queue"), redis.llen("rq:queue:sampling")) == queued  # nothing added

    redis.delete(job_key(held[0].json()["id"]))  # its result expired
    assert client.post(f"/v1/models/{model}/generate", json={"seed": 4}, headers=ASYNC).status_code == 202


def test_full_redis_is_503_with_retry_after_and_leaves_nothing_half_made(
    client: TestClient, conditional_model, full_redis: Redis, limits
) -> None:
    setting(limits, "GANFORGE_SYNC_WAIT_SECONDS", "1")
    model = conditional_model.id
    generate = f"/v1/models/{model}/generate"
    interpolate = {"latents": [{"seed": 1}, {"seed": 2}], "label": "a"}
    # The first waited generate learns of it only after its wait: its BLPOP was pipelined behind the push.
    assert client.post(generate, json={"seed": 1}).status_code == 503
    for response in (
        client.post(generate, json={"seed": 1}),  # now answered at once
        client.post(generate, json={"seed": 1}, headers=ASYNC),
        client.post(f"/v1/models/{model}/interpolate", json=interpolate),
        client.post("/v1/training-jobs", json={"dataset_id": "digits"}),
        client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers={"Idempotency-Key": "k1"}),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "30"
        assert "full" in response.json()["detail"] and "maxmemory" in response.json()["detail"]
        assert response.elapsed.total_seconds() < 1
    assert [job["model_id"] for job in client.get("/v1/training-jobs").json()["training_jobs"]] == [model]
    assert not full_redis.keys("rq:job:*") and not full_redis.keys("ganforge:idempotency:*")
    assert client.get("/v1/models").status_code == 200  # what needs no Redis writes goes on
