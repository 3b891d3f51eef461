"""`GET /metrics` (docs/metrics.md): who may read it, and that its figures follow requests and what Redis
holds. Figures are read with prometheus_client's own parser; the workers' side is written with the same
functions the workers use (workers.shared.fleet_metrics), into the real test Redis."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue
from rq.utils import utcformat

from app.security import hash_key
from tests.conftest import free_port
from workers.shared import fleet_metrics
from workers.shared.contract import TRAIN_JOB, TRAINING_QUEUE
from workers.shared.generate_lane import GenerateCall, enqueue, new_job_id
from workers.shared.progress import publish_progress
from workers.shared.serialization import DataSerializer

REPOSITORY = Path(__file__).resolve().parents[2]
ADMIN_KEY, USER_KEY = "admin-secret", "user-secret"
METRICS_TOKEN = "metrics-token-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of /metrics by its name and labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(limited: Callable[..., TestClient]) -> TestClient:
    return limited(
        GANFORGE_API_KEYS=f"admin:{hash_key(ADMIN_KEY)},user:{hash_key(USER_KEY)}",
        GANFORGE_METRICS_TOKEN=METRICS_TOKEN,
        GANFORGE_REQUESTS_PER_MINUTE="0",
    )


def test_with_keys_metrics_take_an_admin_key_or_the_metrics_token(keyed: TestClient) -> None:
    missing = keyed.get("/metrics")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert keyed.get("/metrics", headers=auth("not-the-token-nor-a-key")).status_code == 401
    refused = keyed.get("/metrics", headers=auth(USER_KEY))
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert scrape(keyed, auth(ADMIN_KEY))
    assert scrape(keyed, auth(METRICS_TOKEN))


def test_the_metrics_token_opens_nothing_else(keyed: TestClient) -> None:
    assert keyed.get("/v1/models", headers=auth(METRICS_TOKEN)).status_code == 401
    assert keyed.get("/v1/datasets", headers=auth(METRICS_TOKEN)).status_code == 401


def test_without_keys_only_this_machine_may_read_metrics(limited: Callable[..., TestClient]) -> None:
    local = limited()
    assert scrape(local)
    remote = TestClient(local.app, base_url="http://127.0.0.1", client=("10.0.0.5", 50000))
    refused = remote.get("/metrics")
    assert refused.status_code == 403 and "GANFORGE_API_KEYS" in refused.json()["detail"]


def test_a_short_metrics_token_is_refused_at_start(limited: Callable[..., TestClient]) -> None:
    with pytest.raises(ValueError, match="GANFORGE_METRICS_TOKEN needs at least 16 characters"):
        limited(GANFORGE_METRICS_TOKEN="short")


def test_requests_are_counted_by_route_template_method_and_status(client: TestClient) -> None:
    before = scrape(client)
    assert client.get("/v1/models/m_nosuchmodel").status_code == 404
    assert client.get("/v1/models/m_othermodel").status_code == 404
    assert client.get("/v1/models").status_code == 200
    after = scrape(client)
    labels = {"route": "/v1/models/{model_id}", "method": "GET", "status": "404"}
    moved = value(after, "ganforge_http_requests_total", **labels) - value(
        before, "ganforge_http_requests_total", **labels
    )
    assert moved == 2
    listed = {"route": "/v1/models", "method": "GET", "status": "200"}
    assert value(after, "ganforge_http_requests_total", **listed) == 1 + value(
        before, "ganforge_http_requests_total", **listed
    )
    timed = {"route": "/v1/models/{model_id}", "method": "GET"}
    count = "ganforge_http_request_duration_seconds_count"
    assert value(after, count, **timed) - value(before, count, **timed) == 2
    assert value(after, "ganforge_http_request_duration_seconds_bucket", **timed, le="+Inf") >= 2
    assert not [key for key in after if ("route", "/v1/models/m_nosuchmodel") in key[1]]


def test_client_chosen_paths_and_methods_become_fixed_labels(client: TestClient) -> None:
    client.get("/no/such/path/8f3a")
    client.request("BREW", "/v1/models")
    client.head("/v1/models")  # served as a GET (app.http_hygiene.HeadAsGet), counted as a HEAD
    samples = scrape(client)
    assert value(samples, "ganforge_http_requests_total", route="none", method="GET", status="404") == 1
    assert (
        value(samples, "ganforge_http_requests_total", route="/v1/models", method="OTHER", status="405") == 1
    )
    assert (
        value(samples, "ganforge_http_requests_total", route="/v1/models", method="HEAD", status="200") == 1
    )
    assert not [
        key for key in samples if ("route", "/no/such/path/8f3a") in key[1] or ("method", "BREW") in key[1]
    ]


def test_requests_refused_before_any_route_are_counted(client: TestClient) -> None:
    proxied = client.get("/v1/models", headers={"X-Forwarded-For": "203.0.113.9"})  # app.locality
    assert proxied.status_code == 403
    samples = scrape(client)
    assert value(samples, "ganforge_http_requests_total", route="none", method="GET", status="403") == 1


def test_queue_depths_oldest_ages_and_job_states(client: TestClient, redis: Redis) -> None:
    training = Queue(TRAINING_QUEUE, connection=redis, serializer=DataSerializer)
    training.enqueue(TRAIN_JOB, "m_first")
    training.enqueue(TRAIN_JOB, "m_second")
    redis.hset(
        f"rq:job:{training.job_ids[0]}",
        "enqueued_at",
        utcformat(datetime.fromtimestamp(time.time() - 600, timezone.utc)),
    )
    training.failed_job_registry.add(training.fetch_job(training.job_ids[1]), ttl=60)
    with redis.pipeline() as pipeline:
        enqueue(pipeline, lane_call(enqueued_at=time.time() - 90))
        enqueue(pipeline, lane_call(enqueued_at=time.time()))
        pipeline.execute()
    samples = scrape(client)
    assert value(samples, "ganforge_queue_depth", queue="training") == 2
    assert value(samples, "ganforge_queue_depth", queue="sampling") == 0
    assert value(samples, "ganforge_queue_depth", queue="generate") == 2
    assert value(samples, "ganforge_queue_oldest_job_age_seconds", queue="training") >= 600
    assert value(samples, "ganforge_queue_oldest_job_age_seconds", queue="generate") >= 90
    assert value(samples, "ganforge_queue_oldest_job_age_seconds", queue="evaluation") == 0
    assert value(samples, "ganforge_jobs", queue="training", state="queued") == 2
    assert value(samples, "ganforge_jobs", queue="training", state="failed") == 1
    assert value(samples, "ganforge_jobs", queue="generate", state="queued") == 2
    assert value(samples, "ganforge_redis_up") == 1


def lane_call(enqueued_at: float) -> GenerateCall:
    return GenerateCall(
        job_id=new_job_id(),
        model_id="m_any",
        seeds=[1],
        labels=None,
        truncation=1.0,
        checkpoint=1,
        format="png",
        result_ttl=60,
        enqueued_at=enqueued_at,
    )


def test_what_workers_report_through_redis(client: TestClient, redis: Redis) -> None:
    with redis.pipeline() as pipeline:
        fleet_metrics.record_pass(pipeline, "w1", images=6, seconds=0.02, requests=3)
        fleet_metrics.record_pass(pipeline, "w1", images=64, seconds=3.0, requests=1)
        fleet_metrics.record_answers(pipeline, "w1", "failed", 2)
        caches = {"generators": {"hits": 7, "misses": 2, "bytes": 4096, "entries": 2}}
        fleet_metrics.record_caches(pipeline, "w1", caches)
        pipeline.execute()
    samples = scrape(client)
    batch = "ganforge_generate_batch_images"
    assert value(samples, f"{batch}_count", worker="w1") == 2
    assert value(samples, f"{batch}_sum", worker="w1") == 70
    assert value(samples, f"{batch}_bucket", worker="w1", le="4.0") == 0
    assert value(samples, f"{batch}_bucket", worker="w1", le="8.0") == 1
    assert value(samples, f"{batch}_bucket", worker="w1", le="64.0") == 2
    assert value(samples, f"{batch}_bucket", worker="w1", le="+Inf") == 2
    forward = "ganforge_generate_forward_seconds"
    assert value(samples, f"{forward}_bucket", worker="w1", le="0.025") == 1
    assert value(samples, f"{forward}_bucket", worker="w1", le="2.5") == 1
    assert value(samples, f"{forward}_bucket", worker="w1", le="5.0") == 2
    requests = "ganforge_generate_requests_total"
    assert value(samples, requests, worker="w1", outcome="finished") == 4
    assert value(samples, requests, worker="w1", outcome="failed") == 2
    cache = {"worker": "w1", "cache": "generators"}
    assert value(samples, "ganforge_model_cache_hits_total", **cache) == 7
    assert value(samples, "ganforge_model_cache_misses_total", **cache) == 2
    assert value(samples, "ganforge_model_cache_bytes", **cache) == 4096
    assert value(samples, "ganforge_model_cache_entries", **cache) == 2
    assert 0 < redis.ttl(fleet_metrics.figures_key("w1")) <= fleet_metrics.FIGURES_TTL_SECONDS


def test_a_stopped_workers_figures_go_away(client: TestClient, redis: Redis) -> None:
    with redis.pipeline() as pipeline:
        fleet_metrics.record_caches(
            pipeline, "gone", {"generators": dict.fromkeys(fleet_metrics.CACHE_FIGURES, 1)}
        )
        pipeline.execute()
    redis.zadd(fleet_metrics.WORKERS_KEY, {"gone": time.time() - 1})  # as if its figures had expired
    samples = scrape(client)
    assert not [key for key in samples if ("worker", "gone") in key[1]]


def test_running_training_jobs_and_worker_heartbeats(client: TestClient, redis: Redis) -> None:
    training = Queue(TRAINING_QUEUE, connection=redis, serializer=DataSerializer)
    redis.zadd(training.started_job_registry.key, {"tj_running:execution1": time.time() + 60})
    publish_progress(
        redis, "tj_running", {"status": "running", "step": 120, "steps": 500, "images_per_second": 850.5}
    )
    beat = datetime.fromtimestamp(time.time() - 5, timezone.utc)
    redis.hset("rq:worker:w7", mapping={"last_heartbeat": utcformat(beat), "queues": "training"})
    redis.sadd("rq:workers", "rq:worker:w7")
    samples = scrape(client)
    assert value(samples, "ganforge_training_step", job_id="tj_running") == 120
    assert value(samples, "ganforge_training_target_steps", job_id="tj_running") == 500
    assert value(samples, "ganforge_training_images_per_second", job_id="tj_running") == 850.5
    heartbeat = value(
        samples, "ganforge_worker_last_heartbeat_timestamp_seconds", worker="w7", queues="training"
    )
    assert heartbeat == pytest.approx(beat.timestamp(), abs=1e-3)
    assert value(samples, "ganforge_workers", queue="training") == 1
    assert value(samples, "ganforge_workers", queue="sampling") == 0


@pytest.fixture
def without_redis(limited: Callable[..., TestClient]) -> Iterator[TestClient]:
    yield limited(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", GANFORGE_REDIS_TIMEOUT_SECONDS="1")


def test_without_redis_metrics_still_answer_saying_so(without_redis: TestClient) -> None:
    without_redis.get("/v1/models")
    samples = scrape(without_redis)
    assert value(samples, "ganforge_redis_up") == 0
    assert value(samples, "ganforge_http_requests_total", route="/v1/models", method="GET", status="200") == 1
    assert not [key for key in samples if key[0].startswith("ganforge_queue_")]


def documented_names() -> set[str]:
    """The metric names of docs/metrics.md's reference tables."""
    reference = (REPOSITORY / "docs" / "metrics.md").read_text().partition("## Reference")[2]
    return set(re.findall(r"^\| `(ganforge_\w+)` \|", reference, flags=re.MULTILINE))


def test_every_metric_served_is_documented_and_every_one_documented_is_served(client: TestClient) -> None:
    text = client.get("/metrics").text
    served = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(text)
    }
    assert served == documented_names()


def test_the_grafana_dashboard_queries_only_documented_metrics() -> None:
    dashboard = json.loads((REPOSITORY / "deploy" / "grafana-dashboard.json").read_text())
    queried = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"ganforge_\w+", target["expr"])
    }
    assert len(dashboard["panels"]) >= 10
    assert queried <= documented_names(), queried - documented_names()
