"""Webhooks at the API: a bad `webhook` or events filter is a 422 naming the field and the rule, and
deliveries are listed and redelivered (delivery itself: tests/integration/test_webhooks.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from tests.api.conftest import make_model
from workers.shared.serialization import DataSerializer
from workers.shared.storage import Storage, utc_now
from workers.shared.webhooks import (
    MAX_DELIVERIES_PER_JOB,
    WEBHOOK_QUEUE,
    DeliveryAttempt,
    job_deliveries,
    read_delivery,
    record_event,
    write_delivery,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC = {"dataset_id": "digits", "steps": 10, "latent_dim": 8, "base_channels": 4}


@pytest.fixture
def hooked(limited: Callable[..., TestClient]) -> TestClient:
    return limited(GANFORGE_WEBHOOK_SECRET=SECRET)


def refusal(answer, field: str) -> str:
    """The message of a 422 about `body.field`."""
    assert answer.status_code == 422, answer.text
    (issue,) = [issue for issue in answer.json()["detail"] if issue["loc"] == ["body", field]]
    return issue["msg"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "must be an http or https URL"),
        ("https://example.com/" + "a" * 2000, "at most 2000"),
        ("http://127.0.0.1:9000/hook", "a loopback address: webhooks to loopback, private and link-local"),
        ("http://10.1.2.3/hook", "a private address"),
        ("http://169.254.169.254/latest", "a link-local address"),
    ],
)
def test_a_bad_webhook_is_refused_naming_the_field_and_the_rule(
    hooked: TestClient, storage: Storage, url: str, reason: str
) -> None:
    message = refusal(hooked.post("/v1/training-jobs", json=SPEC | {"webhook": url}), "webhook")
    assert reason in message
    assert storage.list_models() == []


def test_private_addresses_are_allowed_with_the_opt_in(limited: Callable[..., TestClient]) -> None:
    client = limited(GANFORGE_WEBHOOK_SECRET=SECRET, GANFORGE_WEBHOOK_ALLOW_PRIVATE="1")
    answer = client.post("/v1/training-jobs", json=SPEC | {"webhook": "http://127.0.0.1:9000/hook"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["spec"]["webhook"] == "http://127.0.0.1:9000/hook"
    assert answer.json()["spec"]["webhook_events_filter"] == ["start", "checkpoint", "completed"]


def test_webhooks_need_the_servers_secret(client: TestClient) -> None:
    answer = client.post("/v1/training-jobs", json=SPEC | {"webhook": "https://example.com/hook"})
    assert "GANFORGE_WEBHOOK_SECRET is not set" in refusal(answer, "webhook")


def test_an_unknown_event_is_refused(hooked: TestClient) -> None:
    answer = hooked.post("/v1/training-jobs", json=SPEC | {"webhook_events_filter": ["start", "finished"]})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "webhook_events_filter", 1]


def test_the_202_routes_take_a_webhook(hooked: TestClient, storage: Storage) -> None:
    model = make_model(storage, [])
    answer = hooked.post(
        f"/v1/models/{model.id}/interpolate",
        json={"latents": [{"seed": 1}, {"seed": 2}], "webhook": "http://192.168.0.7/hook"},
    )
    assert "a private address" in refusal(answer, "webhook")
    answer = hooked.post(f"/v1/models/{model.id}/evaluations", json={"webhook": "gopher://example.com"})
    assert "http or https" in refusal(answer, "webhook")
    answer = hooked.post(f"/v1/models/{model.id}/generate", json={"webhook": "http://[::1]:8080/"})
    assert "a loopback address" in refusal(answer, "webhook")
    answer = hooked.post(
        f"/v1/models/{model.id}/exports", json={"format": "onnx", "webhook": "http://10.0.0.9/hook"}
    )
    assert "a private address" in refusal(answer, "webhook")
    answer = hooked.post(
        f"/v1/models/{model.id}/invert",
        files={"image": ("x.png", b"not read", "image/png")},
        data={"webhook": "http://172.16.0.1/hook"},
    )
    assert "a private address" in refusal(answer, "webhook")


def test_deliveries_of_a_job_and_redelivery(hooked: TestClient, redis: Redis) -> None:
    job = hooked.post("/v1/training-jobs", json=SPEC).json()
    route = f"/v1/training-jobs/{job['id']}/webhook-deliveries"
    assert hooked.get(route).json() == {"deliveries": []}
    delivery_id = record_event(redis, job["id"], "start", 0, "https://example.com/hook", '{"a": 1}')
    assert record_event(redis, job["id"], "start", 0, "https://example.com/hook", '{"a": 1}') is None
    queue = Queue(WEBHOOK_QUEUE, connection=redis, serializer=DataSerializer)
    assert queue.count == 1

    (listed,) = hooked.get(route).json()["deliveries"]
    assert listed["id"] == delivery_id and listed["status"] == "pending" and "body" not in listed
    assert hooked.post(f"/v1/webhook-deliveries/{delivery_id}/redeliver").status_code == 409
    queue.empty()  # the attempt is lost, as when its worker is killed: a pending delivery may be sent again
    assert hooked.post(f"/v1/webhook-deliveries/{delivery_id}/redeliver").status_code == 202
    assert queue.count == 1

    attempt = DeliveryAttempt(number=1, at=utc_now(), seconds=0.1, status_code=500, error="HTTP 500")
    failed = read_delivery(redis, delivery_id).model_copy(update={"status": "failed", "attempts": [attempt]})
    write_delivery(redis, failed)
    again = hooked.post(f"/v1/webhook-deliveries/{delivery_id}/redeliver")
    assert again.status_code == 202 and again.json()["status"] == "pending"
    assert hooked.get(again.headers["location"]).json()["attempts"][0]["status_code"] == 500
    assert queue.job_ids == [f"{delivery_id}-1", f"{delivery_id}-2"]  # each attempt's job named by it


def test_unknown_jobs_and_deliveries_are_404(hooked: TestClient) -> None:
    assert hooked.get("/v1/training-jobs/tj_nothing/webhook-deliveries").status_code == 404
    assert hooked.get("/v1/jobs/nothing/webhook-deliveries").status_code == 404
    missing = "msg_" + "0" * 32
    assert hooked.get(f"/v1/webhook-deliveries/{missing}").status_code == 404
    assert hooked.post(f"/v1/webhook-deliveries/{missing}/redeliver").status_code == 404
    assert hooked.get("/v1/webhook-deliveries/not-an-id").status_code == 422


def test_a_jobs_list_is_bounded_and_keeps_what_is_still_pending(redis: Redis) -> None:
    def record(step: int) -> str | None:
        return record_event(redis, "tj_long", "progress", step, "https://example.com/", "{}")

    pending, settled = record(0), record(1)
    write_delivery(redis, read_delivery(redis, settled).model_copy(update={"status": "delivered"}))
    for step in range(2, MAX_DELIVERIES_PER_JOB + 2):
        record(step)
    assert len(job_deliveries(redis, "tj_long")) == MAX_DELIVERIES_PER_JOB
    assert read_delivery(redis, pending) is not None  # still to be sent, though no longer listed
    assert read_delivery(redis, settled) is None


def test_canceling_a_queued_job_sends_completed(limited: Callable[..., TestClient], redis: Redis) -> None:
    client = limited(GANFORGE_WEBHOOK_SECRET=SECRET, GANFORGE_WEBHOOK_ALLOW_PRIVATE="1")
    job = client.post("/v1/training-jobs", json=SPEC | {"webhook": "http://127.0.0.1:9000/hook"}).json()
    canceled = client.post(f"/v1/training-jobs/{job['id']}/cancel").json()
    (listed,) = client.get(f"/v1/training-jobs/{job['id']}/webhook-deliveries").json()["deliveries"]
    assert listed["event"] == "completed"
    sent = json.loads(read_delivery(redis, listed["id"]).body)
    assert sent["status"] == "canceled" and sent == canceled
