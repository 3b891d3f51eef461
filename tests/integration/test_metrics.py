"""/metrics on the real stack (uvicorn, Redis, the workers) with API keys and a metrics token configured:
the credentials it takes, and its figures moving as a model trains and generates. Figures are read with
prometheus_client's own parser."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.security import hash_key
from tests.integration.conftest import Stack, running_stack, wait_for_training

pytestmark = pytest.mark.integration

ADMIN_KEY, USER_KEY = "metrics-admin-key", "metrics-user-key"
METRICS_TOKEN = "metrics-token-for-prometheus"
TINY = {"latent_dim": 16, "base_channels": 8, "batch_size": 8, "encoder_steps": 0}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    keys = f"admin:{hash_key(ADMIN_KEY)},user:{hash_key(USER_KEY)}"
    env = {"GANFORGE_API_KEYS": keys, "GANFORGE_METRICS_TOKEN": METRICS_TOKEN}
    yield from running_stack(tmp_path_factory, "metrics", env)


@pytest.fixture
def admin(keyed_stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=keyed_stack.url, headers=headers, timeout=60) as client:
        yield client


def scrape(stack: Stack) -> Samples:
    """Every sample of /metrics by name and labels, read as Prometheus would: with the metrics token."""
    response = httpx.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    """The label sets of a metric's samples."""
    return [dict(labels) for sample, labels in samples if sample == name]


def test_metrics_take_an_admin_key_or_the_metrics_token(keyed_stack: Stack) -> None:
    url = f"{keyed_stack.url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer a-wrong-token-entirely"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {USER_KEY}"}).status_code == 403
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    assert scrape(keyed_stack)[("ganforge_redis_up", frozenset())] == 1


def test_figures_follow_a_training_run_and_generate_requests(keyed_stack: Stack, admin: httpx.Client) -> None:
    spec = {"dataset_id": "digits", "steps": 5000, "log_every": 5, "checkpoint_every": 100_000, **TINY}
    job_id = admin.post("/v1/training-jobs", json=spec).json()["id"]
    deadline = time.monotonic() + 180
    while value(samples := scrape(keyed_stack), "ganforge_training_step", job_id=job_id) < 10:
        assert time.monotonic() < deadline, "the running job's step never reached /metrics"
        time.sleep(0.2)
    assert value(samples, "ganforge_training_target_steps", job_id=job_id) == 5000
    assert value(samples, "ganforge_training_images_per_second", job_id=job_id) > 0
    assert value(samples, "ganforge_jobs", queue="training", state="started") == 1
    assert value(samples, "ganforge_workers", queue="training") == 1
    heartbeats = labelled(samples, "ganforge_worker_last_heartbeat_timestamp_seconds")
    serving = {labels["queues"]: labels["worker"] for labels in heartbeats}
    assert set(serving) == {"training", "evaluation", "sampling,optimisation", "webhooks"}
    assert admin.post(f"/v1/training-jobs/{job_id}/cancel").status_code == 202
    model_id = wait_for_training(admin, job_id, ("canceled",))["model_id"]
    assert "ganforge_training_step" not in {name for name, _ in scrape(keyed_stack)}

    before = scrape(keyed_stack)
    for seed in (1, 2):  # the first loads the generator (a miss), the second finds it cached (a hit)
        answer = admin.post(f"/v1/models/{model_id}/generate", json={"n": 3, "seed": seed})
        assert answer.status_code == 200, answer.text
    after = scrape(keyed_stack)

    sampling = serving["sampling,optimisation"]
    for name, moved in [
        ("ganforge_generate_batch_images_count", 2),
        ("ganforge_generate_batch_images_sum", 6),
        ("ganforge_generate_forward_seconds_count", 2),
    ]:
        assert value(after, name, worker=sampling) - value(before, name, worker=sampling) == moved, name
    answered = {"worker": sampling, "outcome": "finished"}
    requests = "ganforge_generate_requests_total"
    assert value(after, requests, **answered) - value(before, requests, **answered) == 2
    generators = {"worker": sampling, "cache": "generators"}
    for name in ("ganforge_model_cache_hits_total", "ganforge_model_cache_misses_total"):
        assert value(after, name, **generators) - value(before, name, **generators) == 1, name
    assert value(after, "ganforge_model_cache_bytes", **generators) > 0
    route = {"route": "/v1/models/{model_id}/generate", "method": "POST", "status": "200"}
    assert value(after, "ganforge_http_requests_total", **route) == 2
    assert value(after, "ganforge_queue_depth", queue="generate") == 0
    assert value(after, "ganforge_jobs", queue="training", state="finished") == 1
