"""Webhooks end to end: a real stack (Redis, workers, the webhooks worker, the API) POSTing to a real
HTTP receiver on a loopback port, which checks every signature, counts events, fails attempts on
purpose (a 500, a connection closed without an answer, an answer too late) to prove the retries, and
checks that no event arrives twice."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.integration.conftest import Stack, client_of, running_stack, wait_for_training, wait_until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TIMEOUT_SECONDS = 1.0
MAX_ATTEMPTS = 3


@dataclass
class Received:
    """One POST that reached the receiver."""

    id: str
    event: str
    body: str
    answer: str  # "200", "500", "closed" or "late"


@dataclass
class Receiver:
    """A webhook receiver with a behaviour per path; every path checks the signature first.

    /flaky  each event's first attempt gets a 500, its second a connection closed unanswered, then 200
    /late   each event's first attempt is answered after the sender's timeout, then 200
    /down   each event's first MAX_ATTEMPTS attempts get a 500 (so the delivery fails), then 200
    /moved  302 to /elsewhere, always
    other   200
    """

    port: int = 0
    posts: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    bad_signatures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self, path: str) -> dict[str, list[Received]]:
        """The events answered 200 on `path`, by id."""
        found: dict[str, list[Received]] = defaultdict(list)
        for post in self.posts[path]:
            if post.answer == "200":
                found[post.id].append(post)
        return found

    def attempts(self, path: str, event_id: str) -> list[Received]:
        return [post for post in self.posts[path] if post.id == event_id]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    verifier = Webhook(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            try:
                verifier.verify(body, dict(self.headers.items()))
            except WebhookVerificationError as error:
                receiver.bad_signatures.append(f"{self.headers.get('webhook-id')}: {error}")
                self._answer(400)
                return
            event_id = self.headers["webhook-id"]
            with receiver.lock:
                earlier = len(receiver.attempts(self.path, event_id))
                answer = self._plan(earlier)
                receiver.posts[self.path].append(
                    Received(event_id, self.headers["ganforge-event"], body, answer)
                )
            if answer == "closed":
                self.close_connection = True  # no status line: the sender sees the connection drop
            elif answer == "late":
                time.sleep(TIMEOUT_SECONDS * 3)
                self._answer(200)
            else:
                self._answer(int(answer))

        def _plan(self, earlier: int) -> str:
            if self.path == "/flaky":
                return ("500", "closed")[earlier] if earlier < 2 else "200"
            if self.path == "/late":
                return "late" if earlier == 0 else "200"
            if self.path == "/down":
                return "500" if earlier < MAX_ATTEMPTS else "200"
            if self.path == "/moved":
                return "302"
            return "200"

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                if status == 302:
                    self.send_header("location", "/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:  # the sender gave up waiting
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()


@pytest.fixture(scope="module")
def hooked_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "GANFORGE_WEBHOOK_SECRET": SECRET,
        "GANFORGE_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on loopback
        "GANFORGE_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "GANFORGE_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "GANFORGE_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "GANFORGE_WEBHOOK_PROGRESS_SECONDS": "1",
    }
    yield from running_stack(tmp_path_factory, "webhooks", env)


@pytest.fixture(scope="module")
def api(hooked_stack: Stack) -> Iterator[httpx.Client]:
    yield from client_of(hooked_stack)


def settled(api: httpx.Client, route: str, count: int) -> list[dict]:
    """The deliveries at `route` once there are at least `count` and none is pending."""
    found: list[dict] = []

    def done() -> bool:
        nonlocal found
        found = api.get(route).json()["deliveries"]
        return len(found) >= count and all(d["status"] != "pending" for d in found)

    wait_until(done, 60, f"{count} settled deliveries at {route}")
    return found


@pytest.fixture(scope="module")
def trained(api: httpx.Client, receiver: Receiver) -> dict:
    """A tiny model trained with every event sent to /flaky; the finished job."""
    spec = {
        "dataset_id": "digits",
        "steps": 40,
        "latent_dim": 16,
        "base_channels": 8,
        "encoder_steps": 0,
        "checkpoint_every": 20,
        "sample_every": 20,
        "log_every": 2,
        "webhook": receiver.url("/flaky"),
        "webhook_events_filter": ["start", "progress", "checkpoint", "completed"],
    }
    job = api.post("/v1/training-jobs", json=spec).json()
    return wait_for_training(api, job["id"], ("completed",))


def test_training_events_arrive_signed_once_each_after_retries(
    api: httpx.Client, receiver: Receiver, trained: dict
) -> None:
    deliveries = settled(api, f"/v1/training-jobs/{trained['id']}/webhook-deliveries", 4)
    assert receiver.bad_signatures == []
    assert {d["status"] for d in deliveries} == {"delivered"}
    delivered = receiver.delivered("/flaky")
    assert set(delivered) == {d["id"] for d in deliveries}
    assert all(len(posts) == 1 for posts in delivered.values()), "an event was delivered twice"
    events = defaultdict(list)
    for (post,) in delivered.values():
        events[post.event].append(json.loads(post.body))
    assert [body["status"] for body in events["start"]] == ["running"]
    assert sorted(body["checkpoint_steps"][-1] for body in events["checkpoint"]) == [20, 40]
    assert [body["status"] for body in events["completed"]] == ["completed"]


def test_every_attempt_carries_the_same_id_and_body_and_is_recorded(
    api: httpx.Client, receiver: Receiver, trained: dict
) -> None:
    deliveries = settled(api, f"/v1/training-jobs/{trained['id']}/webhook-deliveries", 4)
    for delivery in deliveries:
        attempts = receiver.attempts("/flaky", delivery["id"])
        assert [post.answer for post in attempts] == ["500", "closed", "200"]
        assert len({post.body for post in attempts}) == 1
        recorded = delivery["attempts"]
        assert [attempt["status_code"] for attempt in recorded] == [500, None, 200]
        assert recorded[0]["error"] == "HTTP 500" and recorded[1]["error"] and recorded[2]["error"] is None
        times = [datetime.fromisoformat(attempt["at"]) for attempt in recorded]
        assert times == sorted(times)


def test_the_completed_body_is_what_get_answers(api: httpx.Client, receiver: Receiver, trained: dict) -> None:
    settled(api, f"/v1/training-jobs/{trained['id']}/webhook-deliveries", 4)
    (completed,) = [
        posts[0] for posts in receiver.delivered("/flaky").values() if posts[0].event == "completed"
    ]
    assert json.loads(completed.body) == api.get(f"/v1/training-jobs/{trained['id']}").json()


def test_progress_events_are_throttled(api: httpx.Client, receiver: Receiver, trained: dict) -> None:
    settled(api, f"/v1/training-jobs/{trained['id']}/webhook-deliveries", 4)
    progress = sorted(
        datetime.fromisoformat(json.loads(posts[0].body)["updated_at"])
        for posts in receiver.delivered("/flaky").values()
        if posts[0].event == "progress"
    )
    # log_every 2 of 40 steps: 20 snapshots; the throttle lets one through per second at most
    assert 1 <= len(progress) < 20
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(progress)]
    assert all(gap >= 0.9 for gap in gaps), gaps


def _interpolate(api: httpx.Client, trained: dict, webhook: str) -> str:
    answer = api.post(
        f"/v1/models/{trained['model_id']}/interpolate",
        json={"latents": [{"seed": 1}, {"seed": 2}], "steps": 2, "format": "json", "webhook": webhook},
        headers={"Prefer": "respond-async"},
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def test_a_late_receiver_is_retried_and_the_job_is_unaffected(
    api: httpx.Client, receiver: Receiver, trained: dict
) -> None:
    job_id = _interpolate(api, trained, receiver.url("/late"))
    (delivery,) = settled(api, f"/v1/jobs/{job_id}/webhook-deliveries", 1)
    assert delivery["status"] == "delivered" and delivery["event"] == "completed"
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [None, 200]
    assert "no answer within" in delivery["attempts"][0]["error"]
    (post,) = receiver.delivered("/late")[delivery["id"]]
    assert json.loads(post.body)["status"] == "finished"
    assert api.get(f"/v1/jobs/{job_id}/result").status_code == 200


def test_a_receiver_that_stays_down_fails_the_delivery_then_an_admin_redelivers_it(
    api: httpx.Client, receiver: Receiver, trained: dict
) -> None:
    job_id = _interpolate(api, trained, receiver.url("/down"))
    (delivery,) = settled(api, f"/v1/jobs/{job_id}/webhook-deliveries", 1)
    assert delivery["status"] == "failed"
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [500] * MAX_ATTEMPTS
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "finished"

    again = api.post(f"/v1/webhook-deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202 and again.json()["status"] == "pending"
    assert again.headers["location"] == f"/v1/webhook-deliveries/{delivery['id']}"
    wait_until(
        lambda: api.get(again.headers["location"]).json()["status"] == "delivered", 30, "the redelivery"
    )
    attempts = receiver.attempts("/down", delivery["id"])
    assert len(attempts) == MAX_ATTEMPTS + 1 and len({post.body for post in attempts}) == 1
    assert receiver.bad_signatures == []


def test_generate_and_invert_send_completed(api: httpx.Client, receiver: Receiver, trained: dict) -> None:
    model = trained["model_id"]
    generated = api.post(
        f"/v1/models/{model}/generate",
        json={"n": 2, "seed": 3, "format": "json", "webhook": receiver.url("/generate")},
        headers={"Prefer": "respond-async"},
    )
    assert generated.status_code == 202, generated.text
    job_id = generated.json()["id"]
    (delivery,) = settled(api, f"/v1/jobs/{job_id}/webhook-deliveries", 1)
    (post,) = receiver.delivered("/generate")[delivery["id"]]
    body, now = json.loads(post.body), api.get(f"/v1/jobs/{job_id}").json()
    assert body["kind"] == "generate" and body["status"] == "finished"
    assert {key: body[key] for key in ("id", "status", "result_url")} == {
        key: now[key] for key in ("id", "status", "result_url")
    }

    picture = api.get(f"/v1/models/{model}/samples/40.png").content
    inverted = api.post(
        f"/v1/models/{model}/invert",
        files={"image": ("x.png", picture, "image/png")},
        data={"steps": "2", "webhook": receiver.url("/invert")},
        headers={"Prefer": "respond-async"},
    )
    assert inverted.status_code == 202, inverted.text
    (delivery,) = settled(api, f"/v1/jobs/{inverted.json()['id']}/webhook-deliveries", 1)
    (post,) = receiver.delivered("/invert")[delivery["id"]]
    assert json.loads(post.body)["kind"] == "invert"
    assert receiver.bad_signatures == []


def test_redirects_are_not_followed(api: httpx.Client, receiver: Receiver, trained: dict) -> None:
    job_id = _interpolate(api, trained, receiver.url("/moved"))
    (delivery,) = settled(api, f"/v1/jobs/{job_id}/webhook-deliveries", 1)
    assert delivery["status"] == "failed"
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] == 302 and "redirects are not followed" in attempt["error"]
    assert receiver.posts["/elsewhere"] == []


def test_events_wait_in_redis_while_no_webhooks_worker_runs(
    hooked_stack: Stack, api: httpx.Client, receiver: Receiver, trained: dict
) -> None:
    worker = hooked_stack.processes.pop("worker-webhooks")
    worker.terminate()
    worker.wait(timeout=30)
    job_id = _interpolate(api, trained, receiver.url("/later"))
    wait_until(lambda: api.get(f"/v1/jobs/{job_id}").json()["status"] == "finished", 60, "the job")
    (waiting,) = api.get(f"/v1/jobs/{job_id}/webhook-deliveries").json()["deliveries"]
    assert waiting["status"] == "pending" and waiting["attempts"] == []

    hooked_stack.start_webhooks_worker()
    (delivery,) = settled(api, f"/v1/jobs/{job_id}/webhook-deliveries", 1)
    assert delivery["status"] == "delivered" and delivery["id"] == waiting["id"]
    assert list(receiver.delivered("/later")) == [delivery["id"]]
