"""The generate lane: generate requests travel over plain Redis lists instead of RQ. No torch.

Why not RQ: RQ's per-job lifecycle (job hash, queue, started/finished registries, executions, result
stream) costs about ten Redis round trips per job in the worker and several in the API. A generate
request is a millisecond of a batched forward pass, and carried more bookkeeping than work. Here a
request costs the API one round trip (RPUSH with the blocking read pipelined behind it), and the worker
three round trips per batch of requests.

    ganforge:generate:queue              pending requests, oldest first (JSON, see `GenerateCall`)
    ganforge:generate:job:{id}           hash: status (queued | finished | failed), times, answer (msgpack)
    ganforge:generate:reply:{id}         list the API's waiting request pops the answer from
    ganforge:generate:consumers          the names of the consumers that have started
    ganforge:generate:taken:{consumer}   requests a consumer took and has not answered yet
    ganforge:generate:alive:{consumer}   the consumer's heartbeat; when it lapses, another consumer
                                         puts its taken requests back on the queue (at most MAX_ATTEMPTS)

A finished request's answer stays in its job hash for `result_ttl` (GET /v1/jobs/{id}) only if nobody
is waiting for it (the request asked for 202, or its wait has run out); an answer that a waiting
request takes straight from its reply list is kept REPLY_TTL_SECONDS, so a busy service does not hold
an hour of images in Redis.

The worker side (taking batches, rendering, answering) is workers.jobs.generate.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from workers.shared.serialization import DataSerializer, UnreadableData

QUEUE_KEY = "ganforge:generate:queue"
CONSUMERS_KEY = "ganforge:generate:consumers"
JOB_ID_PREFIX = "gen_"
MAX_ATTEMPTS = 3  # a request whose consumers died this many times fails instead of being taken again
REPLY_TTL_SECONDS = 120  # an answer nobody waited for (a 202 request) is read from the job hash instead
CLOCK_SKEW_SECONDS = 2
STATUSES = ("queued", "finished", "failed")


def job_key(job_id: str) -> str:
    return f"ganforge:generate:job:{job_id}"


def reply_key(job_id: str) -> str:
    return f"ganforge:generate:reply:{job_id}"


def taken_key(consumer: str) -> str:
    return f"ganforge:generate:taken:{consumer}"


def alive_key(consumer: str) -> str:
    return f"ganforge:generate:alive:{consumer}"


def is_lane_job(job_id: str) -> bool:
    return job_id.startswith(JOB_ID_PREFIX)


@dataclass(frozen=True)
class GenerateCall:
    """One generate request, as the API checked it: the model and checkpoint exist, labels are the
    model's, the seeds are in range."""

    job_id: str
    model_id: str
    seeds: list[int]
    labels: list[str] | None
    truncation: float
    checkpoint: int
    format: str
    result_ttl: int
    wait_seconds: float = 0.0  # how long the API waits for the answer (0: it answered 202)
    enqueued_at: float = field(default_factory=time.time)
    attempts: int = 0
    webhook: str | None = None  # where to send its `completed` event (workers.shared.webhooks)

    def answer_ttl(self, now: float) -> int:
        """How long to keep the answer: briefly while its waiter (given a margin for clock skew between
        machines) still waits, else the full result TTL."""
        still_waiting = now < self.enqueued_at + self.wait_seconds - CLOCK_SKEW_SECONDS
        return min(REPLY_TTL_SECONDS, self.result_ttl) if still_waiting else self.result_ttl

    def encode(self) -> bytes:
        return json.dumps(vars(self)).encode()  # its fields are all plain values: no asdict() deep copy

    @classmethod
    def decode(cls, raw: bytes) -> GenerateCall:
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError) as error:
            raise UnreadableData(f"not a generate request ({error})") from error


def new_job_id() -> str:
    return JOB_ID_PREFIX + secrets.token_hex(12)


def submit(pipeline: Any, call: GenerateCall) -> None:
    """Add the commands that record `call` as queued (GET /v1/jobs/{id}) and queue it to `pipeline` (a
    sync or asyncio Redis pipeline; the caller executes it: one round trip)."""
    record_queued(pipeline, call)
    enqueue(pipeline, call)


def enqueue(pipeline: Any, call: GenerateCall) -> None:
    """Add the command that queues `call` without a job record: for a call whose caller waits for the
    answer, as nobody else knows its id until the wait runs out (then `record_queued`)."""
    pipeline.rpush(QUEUE_KEY, call.encode())


def record_queued(pipeline: Any, call: GenerateCall) -> None:
    """Add the commands that record `call` as queued. HSETNX: when a caller stops waiting, an answer that
    a worker stored meanwhile stays as it is."""
    pipeline.hsetnx(job_key(call.job_id), "status", "queued")
    pipeline.hsetnx(job_key(call.job_id), "enqueued_at", repr(call.enqueued_at))
    pipeline.expire(job_key(call.job_id), call.result_ttl)


@dataclass(frozen=True)
class Answer:
    """A finished request's outcome: the result (workers.shared.results' shape) or why it failed."""

    result: dict[str, Any] | None
    error: str | None = None

    def encode(self) -> bytes:
        return DataSerializer.dumps([self.result, self.error])

    @classmethod
    def decode(cls, raw: bytes) -> Answer:
        """Raises UnreadableData for anything but an answer as `encode` writes it."""
        match DataSerializer.loads(raw):
            case [dict() | None as result, str() | None as error]:
                return cls(result, error)
            case _:
                raise UnreadableData("a generate answer is not [result, error]")


def answer(pipeline: Any, call: GenerateCall, outcome: Answer) -> None:
    """Add the commands that store `outcome` for `call` and hand it to a waiting request."""
    encoded, now = outcome.encode(), time.time()
    status = "finished" if outcome.error is None else "failed"
    pipeline.hset(job_key(call.job_id), mapping={"status": status, "ended_at": repr(now), "answer": encoded})
    pipeline.expire(job_key(call.job_id), call.answer_ttl(now))
    pipeline.rpush(reply_key(call.job_id), encoded)
    pipeline.expire(reply_key(call.job_id), REPLY_TTL_SECONDS)


def read_job(redis: Any, job_id: str) -> dict[str, Any] | None:
    """A lane job's record: status, enqueued_at, ended_at (ISO times) and the `Answer` once there is
    one; None if there is no such job (or it expired)."""
    record = redis.hgetall(job_key(job_id))
    if not record:
        return None
    try:
        fields = {key.decode(): value for key, value in record.items()}
        status = fields["status"].decode()
        if status not in STATUSES:
            raise ValueError(f"status {status[:20]!r}")
        return {
            "status": status,
            "enqueued_at": _time(fields.get("enqueued_at")),
            "ended_at": _time(fields.get("ended_at")),
            "answer": Answer.decode(fields["answer"]) if "answer" in fields else None,
        }
    except (ValueError, KeyError, OverflowError, OSError) as error:  # UnicodeDecodeError is a ValueError
        raise UnreadableData(f"generate job {job_id}'s record is not ganforge's ({error})") from error


def _time(raw: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(float(raw), timezone.utc) if raw else None
