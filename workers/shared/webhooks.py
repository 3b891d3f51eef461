"""Webhook events of jobs: each one recorded in Redis as a delivery and queued on the `webhooks` queue,
where `python -m workers.hooks` POSTs it (workers.hooks.delivery). Whoever emits an event (the training
loop, a job's end) only writes to Redis: a slow or dead receiver never holds a job up.

An event's id (the `webhook-id` header, and the delivery's id) is derived from the job, the event and
its step or outcome, so an event emitted again (a training run replayed after its worker died) is
recognised and not sent a second time, and every attempt at one event carries the same id and body.

Keys (all expire after DELIVERY_TTL_SECONDS):
    ganforge:webhook:delivery:{id}   a delivery: the body sent and every attempt, JSON
    ganforge:webhook:job:{job_id}    the job's newest MAX_DELIVERIES_PER_JOB delivery ids, newest first;
                                     an older delivery is deleted once it is no longer pending
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field
from redis import Redis
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from workers.shared.contract import WEBHOOK_QUEUE, WebhookEvent, WebhookFields
from workers.shared.generate_lane import Answer, GenerateCall
from workers.shared.job_bodies import lane_job_body, rq_job_body, training_job_body
from workers.shared.serialization import DataSerializer
from workers.shared.storage import ModelManifest, Storage, utc_now

DELIVER_JOB = "workers.hooks.delivery.deliver"
DELIVERY_TTL_SECONDS = 7 * 24 * 3600
MAX_DELIVERIES_PER_JOB = 200
ATTEMPT_JOB_TIMEOUT = 120

log = logging.getLogger("ganforge.webhooks")


class DeliveryAttempt(BaseModel):
    number: int = Field(description="1 for the first attempt; a redelivery continues the count.")
    at: datetime
    seconds: float = Field(description="How long the receiver took to answer, or to fail.")
    status_code: int | None = Field(None, description="The HTTP status; none if there was no answer.")
    error: str | None = Field(None, description="Why the attempt failed; none for a 2xx.")


class WebhookDelivery(BaseModel):
    """One event of one job, and every attempt to deliver it."""

    id: str = Field(description="The `webhook-id` header: the same on every attempt and redelivery.")
    job_id: str
    event: WebhookEvent
    url: str
    status: Literal["pending", "delivered", "failed"] = Field(
        description="pending: an attempt is queued or scheduled; delivered: a 2xx; failed: retries spent, "
        "or an answer that is not retried (4xx, 3xx)."
    )
    created_at: datetime
    next_attempt_at: datetime | None = Field(None, description="When the next retry is due, while pending.")
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class StoredDelivery(WebhookDelivery):
    body: str = Field(description="The JSON sent: the same bytes on every attempt, so signatures match.")


class WebhookDeliveryList(BaseModel):
    deliveries: list[WebhookDelivery] = Field(description="Newest first; the newest 200 of the job.")


def delivery_key(delivery_id: str) -> str:
    return f"ganforge:webhook:delivery:{delivery_id}"


def job_deliveries_key(job_id: str) -> str:
    return f"ganforge:webhook:job:{job_id}"


def event_id(job_id: str, event: str, sequence: str | int) -> str:
    """The id of one event of a job: the same whenever the same event is emitted again."""
    digest = hashlib.sha256(f"{job_id}:{event}:{sequence}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def record_event(
    redis: Redis, job_id: str, event: WebhookEvent, sequence: str | int, url: str, body: str
) -> str | None:
    """Record the event and queue its first attempt; its delivery id, or None if this event was
    recorded before (nothing is sent again)."""
    delivery = StoredDelivery(
        id=event_id(job_id, event, sequence),
        job_id=job_id,
        event=event,
        url=url,
        status="pending",
        created_at=utc_now(),
        body=body,
    )
    if not redis.set(delivery_key(delivery.id), delivery.model_dump_json(), nx=True, ex=DELIVERY_TTL_SECONDS):
        return None
    index = job_deliveries_key(job_id)
    with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(index, delivery.id)
        pipe.lrange(index, MAX_DELIVERIES_PER_JOB, -1)
        pipe.ltrim(index, 0, MAX_DELIVERIES_PER_JOB - 1)
        pipe.expire(index, DELIVERY_TTL_SECONDS)
        dropped = pipe.execute()[1]
    for old in dropped:  # unlisted now; one still pending stays until it is delivered or expires
        stored = read_delivery(redis, old.decode())
        if stored is not None and stored.status != "pending":
            redis.delete(delivery_key(stored.id))
    queue_attempt(redis, delivery, attempt=1)
    return delivery.id


def queue_attempt(redis: Redis, delivery: StoredDelivery, attempt: int, delay_seconds: float = 0) -> None:
    """Queue the delivery's next attempt, number `attempt` of this round (a redelivery starts at 1), now
    or after a delay (RQ's scheduler, run by the webhooks worker, moves it to the queue when due)."""
    queue = Queue(WEBHOOK_QUEUE, connection=redis, serializer=DataSerializer)
    options: dict[str, Any] = {
        "job_id": attempt_job_id(delivery),
        "job_timeout": ATTEMPT_JOB_TIMEOUT,
        "result_ttl": 0,
        "failure_ttl": 24 * 3600,
    }
    if delay_seconds > 0:
        queue.enqueue_in(timedelta(seconds=delay_seconds), DELIVER_JOB, delivery.id, attempt, **options)
    else:
        queue.enqueue(DELIVER_JOB, delivery.id, attempt, **options)


def attempt_job_id(delivery: StoredDelivery) -> str:
    """The RQ job of the delivery's next attempt: named by the attempt, so it can be looked for."""
    return f"{delivery.id}-{len(delivery.attempts) + 1}"


def attempt_in_flight(redis: Redis, delivery: StoredDelivery) -> bool:
    """Whether the delivery's next attempt is queued, scheduled or running. A pending delivery with none
    lost it (its worker was killed mid-attempt): it may be redelivered."""
    try:
        job = Job.fetch(attempt_job_id(delivery), connection=redis, serializer=DataSerializer)
    except NoSuchJobError:
        return False
    return job.get_status() in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)


def read_delivery(redis: Redis, delivery_id: str) -> StoredDelivery | None:
    payload = redis.get(delivery_key(delivery_id))
    return StoredDelivery.model_validate_json(payload) if payload else None


def write_delivery(redis: Redis, delivery: StoredDelivery) -> None:
    """Save a delivery that exists, keeping its expiry."""
    redis.set(delivery_key(delivery.id), delivery.model_dump_json(), xx=True, keepttl=True)


def job_deliveries(redis: Redis, job_id: str) -> list[WebhookDelivery]:
    """A job's deliveries, newest first."""
    ids = [raw.decode() for raw in redis.lrange(job_deliveries_key(job_id), 0, -1)]
    payloads = redis.mget([delivery_key(delivery_id) for delivery_id in ids]) if ids else []
    return [WebhookDelivery.model_validate_json(payload) for payload in payloads if payload]


def redeliver(redis: Redis, delivery: StoredDelivery) -> StoredDelivery:
    """Send a delivery with no attempt in flight (delivered, failed, or pending with its attempt lost)
    again: same id, same body, a new round of attempts."""
    delivery = delivery.model_copy(update={"status": "pending", "next_attempt_at": None})
    write_delivery(redis, delivery)
    queue_attempt(redis, delivery, attempt=1)
    return delivery


class JobWebhook:
    """The events one job sends: those in its `webhook_events_filter`, `progress` at most every
    `progress_seconds`. Failing to record an event is logged, never raised: a job never fails for its
    webhook."""

    def __init__(
        self, redis: Redis, job_id: str, fields: WebhookFields, progress_seconds: float = 0.0
    ) -> None:
        self.redis = redis
        self.job_id = job_id
        self.url = fields.webhook
        self.events = set(fields.webhook_events_filter)
        self.progress_seconds = progress_seconds
        self._last_progress = -float("inf")

    def send(self, event: WebhookEvent, sequence: str | int, body: Callable[[], BaseModel]) -> None:
        """Record `event` for delivery if the job wants it; `body` builds the job's JSON only then."""
        if self.url is None or event not in self.events:
            return
        if event == "progress":
            now = time.monotonic()
            if now - self._last_progress < self.progress_seconds:
                return
            self._last_progress = now
        try:
            record_event(self.redis, self.job_id, event, sequence, self.url, body().model_dump_json())
        except Exception:  # Redis down or full, the model deleted meanwhile: the job goes on
            log.exception("job %s: the %s webhook could not be recorded", self.job_id, event)


class TrainingWebhook(JobWebhook):
    """A training job's webhook: each event carries the job as `GET /v1/training-jobs/{id}` shows it."""

    def __init__(
        self, redis: Redis, storage: Storage, manifest: ModelManifest, progress_seconds: float = 0.0
    ):
        super().__init__(redis, manifest.training_job_id, manifest.spec, progress_seconds)
        self.storage = storage
        self.model_id = manifest.id

    def event(self, event: WebhookEvent, sequence: str | int, progress: dict[str, Any]) -> None:
        """Send `event` with the job as it is now on disk and as `progress` (its live snapshot) says."""
        self.send(event, sequence, lambda: self._body(progress))

    def _body(self, progress: dict[str, Any]) -> BaseModel:
        manifest = self.storage.read_model(self.model_id)
        if manifest is None:
            raise LookupError(f"model {self.model_id} is gone")
        return training_job_body(manifest, self.storage, progress)


# --- RQ jobs: `completed` from the job's own success and failure callbacks ---------------------------

WEBHOOK_META = "webhook"
"""The key in an RQ job's `meta` that holds its request's webhook fields."""


def job_callbacks(fields: WebhookFields) -> dict[str, Any]:
    """`Queue.enqueue` options that send the job's `completed` webhook when it ends, if it has one."""
    if fields.webhook is None:
        return {}
    return {
        "meta": {WEBHOOK_META: fields.model_dump(include={"webhook", "webhook_events_filter"})},
        "on_success": Callback(f"{__name__}.job_succeeded"),
        "on_failure": Callback(f"{__name__}.job_failed"),
    }


def job_succeeded(job: Job, connection: Redis, result: Any) -> None:
    _send_completed(job, connection, "finished", None)


def job_failed(job: Job, connection: Redis, kind: type, error: BaseException, traceback: Any) -> None:
    if job.should_retry:  # RQ runs the job again: it has not ended
        return
    _send_completed(job, connection, "failed", f"{kind.__name__}: {error}")


def _send_completed(job: Job, redis: Redis, status: str, error: str | None) -> None:
    fields = WebhookFields.model_construct(**job.meta[WEBHOOK_META])  # checked when it was requested
    JobWebhook(redis, job.id, fields).send(
        "completed", status, lambda: rq_job_body(job, redis, status, error)
    )


def lane_job_ended(redis: Redis, call: GenerateCall, outcome: Answer) -> None:
    """A generate request's `completed` event, if it named a webhook (the generate lane has no RQ job
    to carry callbacks: its consumer calls this after answering)."""
    if call.webhook is None:
        return
    status = "finished" if outcome.error is None else "failed"
    enqueued_at = datetime.fromtimestamp(call.enqueued_at, timezone.utc)
    fields = WebhookFields.model_construct(webhook=call.webhook, webhook_events_filter=["completed"])
    JobWebhook(redis, call.job_id, fields).send(
        "completed", status, lambda: lane_job_body(call.job_id, status, enqueued_at, utc_now(), outcome.error)
    )
