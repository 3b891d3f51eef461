"""Live job state in Redis: progress snapshots, a pub/sub channel of events, and cancel flags.

Keys (all expire; the files on disk are the record that lasts):
    ganforge:progress:{job_id}   the latest progress snapshot, JSON
    ganforge:events:{job_id}     pub/sub channel carrying every snapshot as it is written
    ganforge:cancel:{job_id}     present when a cancel was asked for
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

PROGRESS_TTL_SECONDS = 7 * 24 * 3600


def progress_key(job_id: str) -> str:
    return f"ganforge:progress:{job_id}"


def events_channel(job_id: str) -> str:
    return f"ganforge:events:{job_id}"


def cancel_key(job_id: str) -> str:
    return f"ganforge:cancel:{job_id}"


def publish_progress(redis: Redis, job_id: str, snapshot: dict[str, Any]) -> None:
    payload = json.dumps(snapshot)
    with redis.pipeline(transaction=False) as pipe:
        pipe.set(progress_key(job_id), payload, ex=PROGRESS_TTL_SECONDS)
        pipe.publish(events_channel(job_id), payload)
        pipe.execute()


def read_progress(redis: Redis, job_id: str) -> dict[str, Any] | None:
    payload = redis.get(progress_key(job_id))
    return json.loads(payload) if payload else None


def request_cancel(redis: Redis, job_id: str) -> None:
    redis.set(cancel_key(job_id), 1, ex=PROGRESS_TTL_SECONDS)


def clear_cancel(redis: Redis, job_id: str) -> None:
    redis.delete(cancel_key(job_id))


def cancel_requested(redis: Redis, job_id: str) -> bool:
    return bool(redis.exists(cancel_key(job_id)))
