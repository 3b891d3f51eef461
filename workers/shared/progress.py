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
    return decode_progress(redis.get(progress_key(job_id)))


def decode_progress(payload: bytes | str | None) -> dict[str, Any] | None:
    """A snapshot as written by `publish_progress`, or None for anything else: whoever can write a key
    in Redis must not be able to make the API fail by putting something other than a JSON object there."""
    if not payload:
        return None
    try:
        snapshot = json.loads(payload)
    except ValueError:
        return None
    return snapshot if isinstance(snapshot, dict) else None


def request_cancel(redis: Redis, job_id: str) -> None:
    redis.set(cancel_key(job_id), 1, ex=PROGRESS_TTL_SECONDS)


def clear_cancel(redis: Redis, job_id: str) -> None:
    redis.delete(cancel_key(job_id))


def cancel_requested(redis: Redis, job_id: str) -> bool:
    return bool(redis.exists(cancel_key(job_id)))
