"""The figures workers report for `/metrics`, kept in Redis. No torch.

Workers write their figures into Redis and the API reads them when Prometheus scrapes it
(app.fleet_collector), rather than each worker serving a metrics port of its own: the whole fleet is one
scrape target, no port has to be opened on a worker, and a worker on another host (behind NAT, in a
container with no published port) reports like a local one. A worker adds its writes to a pipeline it
runs anyway (the sampling worker: the one that answers a forward pass's requests), so reporting costs
no round trip of its own.

    ganforge:metrics:workers          sorted set: a reporting worker's name → when its figures expire
    ganforge:metrics:worker:{name}    hash: the worker's figures; they expire FIGURES_TTL_SECONDS after
                                      its last write (its heartbeat writes), so a stopped worker's go away

Fields of a worker's hash:
    {histogram}:le:{bound}   observations in that bucket alone (the reader makes them cumulative)
    {histogram}:sum          the sum of the observations; {histogram}:count, how many
    generate_requests:{outcome}            requests answered: finished or failed
    model_cache:{cache}:{figure}           a cache's hits, misses (since the worker started), bytes, entries
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis

WORKERS_KEY = "ganforge:metrics:workers"
FIGURES_TTL_SECONDS = 30  # three heartbeats (workers.jobs.heartbeat) missed in a row
CACHE_FIGURES = ("hits", "misses", "bytes", "entries")
OUTCOMES = ("finished", "failed")


def figures_key(worker: str) -> str:
    return f"ganforge:metrics:worker:{worker}"


@dataclass(frozen=True)
class HistogramSpec:
    """A histogram kept as one hash field per bucket; `bounds` are the buckets' upper bounds, ascending."""

    name: str
    bounds: tuple[float, ...]

    def bucket_field(self, value: float) -> str:
        bound = next((bound for bound in self.bounds if value <= bound), math.inf)
        return f"{self.name}:le:{bound!r}"

    def observe(self, pipeline: Any, key: str, value: float) -> None:
        pipeline.hincrby(key, self.bucket_field(value), 1)
        pipeline.hincrbyfloat(key, f"{self.name}:sum", value)
        pipeline.hincrby(key, f"{self.name}:count", 1)

    def read(self, figures: Mapping[str, float]) -> tuple[list[tuple[float, float]], float] | None:
        """(cumulative count per upper bound, +Inf last; the sum), or None if nothing was observed."""
        if f"{self.name}:count" not in figures:
            return None
        buckets, total = [], 0.0
        for bound in (*self.bounds, math.inf):
            total += figures.get(f"{self.name}:le:{bound!r}", 0.0)
            buckets.append((bound, total))
        return buckets, figures.get(f"{self.name}:sum", 0.0)


BATCH_IMAGES = HistogramSpec("generate_batch_images", (1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
FORWARD_SECONDS = HistogramSpec(
    "generate_forward_seconds", (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
)


def record_pass(pipeline: Any, worker: str, images: int, seconds: float, requests: int) -> None:
    """Add to `pipeline` the writes for one forward pass of `images` images that took `seconds` and
    answered `requests` requests."""
    key = figures_key(worker)
    BATCH_IMAGES.observe(pipeline, key, images)
    FORWARD_SECONDS.observe(pipeline, key, seconds)
    record_answers(pipeline, worker, "finished", requests)


def record_answers(pipeline: Any, worker: str, outcome: str, requests: int) -> None:
    pipeline.hincrby(figures_key(worker), f"generate_requests:{outcome}", requests)


def record_caches(pipeline: Any, worker: str, caches: Mapping[str, Mapping[str, int]]) -> None:
    """Add to `pipeline` the writes of each cache's figures (CACHE_FIGURES) as they are now, and keep the
    worker's figures alive for another FIGURES_TTL_SECONDS."""
    key = figures_key(worker)
    mapping = {
        f"model_cache:{cache}:{figure}": figures[figure]
        for cache, figures in caches.items()
        for figure in CACHE_FIGURES
    }
    pipeline.hset(key, mapping=mapping)
    now = time.time()
    pipeline.expire(key, FIGURES_TTL_SECONDS)
    pipeline.zadd(WORKERS_KEY, {worker: now + FIGURES_TTL_SECONDS})
    pipeline.zremrangebyscore(WORKERS_KEY, "-inf", now)  # forget stopped workers: the set stays small


def read_figures(redis: Redis) -> dict[str, dict[str, float]]:
    """Each reporting worker's figures by its name. Fields that are not numbers are left out."""
    names = [name.decode() for name in redis.zrangebyscore(WORKERS_KEY, time.time(), "+inf")]
    with redis.pipeline(transaction=False) as pipeline:
        for name in names:
            pipeline.hgetall(figures_key(name))
        hashes = pipeline.execute()
    return {name: _numbers(fields) for name, fields in zip(names, hashes, strict=True) if fields}


def _numbers(fields: Mapping[bytes, bytes]) -> dict[str, float]:
    numbers = {}
    for field, value in fields.items():
        try:
            numbers[field.decode()] = float(value)
        except ValueError:  # UnicodeDecodeError is one too
            continue
    return numbers


def cache_fields(figures: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """The `model_cache:{cache}:{figure}` fields of a worker's figures, as {cache: {figure: value}}."""
    caches: dict[str, dict[str, float]] = {}
    for field, value in figures.items():
        prefix, _, rest = field.partition(":")
        cache, _, figure = rest.rpartition(":")
        if prefix == "model_cache" and cache and figure in CACHE_FIGURES:
            caches.setdefault(cache, {})[figure] = value
    return caches
