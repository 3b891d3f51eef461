"""The fleet's figures for /metrics, read from Redis when Prometheus scrapes: queue depths and the age of
each queue's oldest job, jobs by state, worker heartbeats, running training jobs' step and speed, and
what the workers report through Redis (workers.shared.fleet_metrics: the generate lane's batches and
forward passes, the model caches).

Reading at scrape time keeps the request paths free of it: nothing here runs per request. When Redis
cannot be read, only `ganforge_redis_up 0` is reported, and the API's own figures as usual.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.registry import BaseRegistry
from rq.utils import utcparse
from rq.worker_registration import REDIS_WORKER_KEYS

from workers.shared import fleet_metrics, generate_lane
from workers.shared.contract import RQ_QUEUES, TRAINING_QUEUE
from workers.shared.progress import read_progress
from workers.shared.serialization import DataSerializer, UnreadableData

GENERATE_LANE = "generate"  # the generate lane's name as a queue label
WORKER_KEY_PREFIX = "rq:worker:"


def registries(queue: Queue) -> dict[str, BaseRegistry]:
    """RQ's registries of a queue's jobs past the queue, by the state they hold."""
    return {
        "started": queue.started_job_registry,
        "finished": queue.finished_job_registry,
        "failed": queue.failed_job_registry,
        "deferred": queue.deferred_job_registry,
        "scheduled": queue.scheduled_job_registry,
        "canceled": queue.canceled_job_registry,
    }


class FleetCollector(Collector):
    def __init__(self, redis: Callable[[], Redis]):
        """`redis` gives the client to read with (the app's, made when it starts)."""
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ganforge_redis_up", "1 when the fleet's figures could be read from Redis.")
        try:
            families = self._read(self.redis())
        except (RedisError, ValueError):  # unreachable, or holding what ganforge did not write
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _read(self, redis: Redis) -> list[Metric]:
        """Every family, read before any is reported, so a failing read reports none of them."""
        return [
            *queue_families(redis),
            *worker_families(redis),
            *training_families(redis),
            *reported_families(fleet_metrics.read_figures(redis)),
        ]


def queue_families(redis: Redis) -> list[Metric]:
    """Depth, oldest job's age and jobs by state, for each RQ queue and for the generate lane."""
    depth = GaugeMetricFamily("ganforge_queue_depth", "Jobs waiting in a queue.", labels=["queue"])
    age = GaugeMetricFamily(
        "ganforge_queue_oldest_job_age_seconds",
        "How long the oldest waiting job of a queue has waited; 0 when none waits.",
        labels=["queue"],
    )
    jobs = GaugeMetricFamily("ganforge_jobs", "Jobs by queue and state.", labels=["queue", "state"])
    queues = [Queue(name, connection=redis, serializer=DataSerializer) for name in RQ_QUEUES]
    with redis.pipeline(transaction=False) as pipeline:
        for queue in queues:
            pipeline.llen(queue.key)
            pipeline.lindex(queue.key, 0)
            for registry in registries(queue).values():
                pipeline.zcard(registry.key)
        pipeline.llen(generate_lane.QUEUE_KEY)
        pipeline.lindex(generate_lane.QUEUE_KEY, 0)
        pipeline.smembers(generate_lane.CONSUMERS_KEY)
        answers = iter(pipeline.execute())
    oldest: dict[str, bytes] = {}
    for queue in queues:
        waiting, first = next(answers), next(answers)
        depth.add_metric([queue.name], waiting)
        jobs.add_metric([queue.name, "queued"], waiting)
        for state in registries(queue):
            jobs.add_metric([queue.name, state], next(answers))
        if first is not None:
            oldest[queue.name] = first
    waiting, first, consumers = next(answers), next(answers), next(answers)
    depth.add_metric([GENERATE_LANE], waiting)
    jobs.add_metric([GENERATE_LANE, "queued"], waiting)
    jobs.add_metric([GENERATE_LANE, "started"], _taken(redis, consumers))
    now = time.time()
    enqueued = _enqueued_at(redis, oldest)
    for name in RQ_QUEUES:
        age.add_metric([name], max(0.0, now - enqueued[name]) if name in enqueued else 0.0)
    age.add_metric([GENERATE_LANE], max(0.0, now - _lane_enqueued_at(first, now)))
    return [depth, age, jobs]


def _lane_enqueued_at(first: bytes | None, now: float) -> float:
    """When the generate lane's oldest request was queued; `now` if there is none (or it is not one)."""
    if first is None:
        return now
    try:
        return generate_lane.GenerateCall.decode(first).enqueued_at
    except UnreadableData:
        return now


def _taken(redis: Redis, consumers: Iterable[bytes]) -> int:
    """Requests the generate lane's consumers have taken and not answered yet."""
    with redis.pipeline(transaction=False) as pipeline:
        for consumer in consumers:
            pipeline.llen(generate_lane.taken_key(consumer.decode()))
        return sum(pipeline.execute())


def _enqueued_at(redis: Redis, job_ids: dict[str, bytes]) -> dict[str, float]:
    """When each queue's oldest job was queued (unix time), for the jobs whose record is still there."""
    with redis.pipeline(transaction=False) as pipeline:
        for job_id in job_ids.values():
            pipeline.hget(Job.key_for(job_id.decode()), "enqueued_at")
        times = pipeline.execute()
    return {
        queue: utcparse(enqueued.decode()).timestamp()
        for queue, enqueued in zip(job_ids, times, strict=True)
        if enqueued
    }


def worker_families(redis: Redis) -> list[Metric]:
    """Each RQ worker's last heartbeat, and how many workers serve each queue."""
    heartbeat = GaugeMetricFamily(
        "ganforge_worker_last_heartbeat_timestamp_seconds",
        "When a worker last said it was alive (unix time); its queues, comma-separated.",
        labels=["worker", "queues"],
    )
    count = GaugeMetricFamily("ganforge_workers", "Workers serving a queue.", labels=["queue"])
    keys = sorted(key.decode() for key in redis.smembers(REDIS_WORKER_KEYS))
    with redis.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.hmget(key, "last_heartbeat", "queues")
        records = pipeline.execute()
    serving = dict.fromkeys(RQ_QUEUES, 0)
    for key, (last_heartbeat, queues) in zip(keys, records, strict=True):
        if last_heartbeat is None:  # the worker stopped; RQ's maintenance drops its key later
            continue
        names = (queues or b"").decode()
        beat = utcparse(last_heartbeat.decode()).timestamp()
        heartbeat.add_metric([key.removeprefix(WORKER_KEY_PREFIX), names], beat)
        for name in names.split(","):
            if name in serving:
                serving[name] += 1
    for name, workers in serving.items():
        count.add_metric([name], workers)
    return [heartbeat, count]


def training_families(redis: Redis) -> list[Metric]:
    """Step, target steps and images/s of each running training job, from its progress record."""
    step = GaugeMetricFamily("ganforge_training_step", "A running training job's step.", labels=["job_id"])
    target = GaugeMetricFamily(
        "ganforge_training_target_steps", "The step a running training job stops at.", labels=["job_id"]
    )
    speed = GaugeMetricFamily(
        "ganforge_training_images_per_second",
        "A running training job's speed over its last logging interval.",
        labels=["job_id"],
    )
    running = Queue(TRAINING_QUEUE, connection=redis, serializer=DataSerializer).started_job_registry
    for entry in redis.zrange(running.key, 0, -1):
        job_id = running.parse_job_id(entry.decode())
        progress = read_progress(redis, job_id)
        if not progress or progress.get("status") != "running":
            continue
        step.add_metric([job_id], progress["step"])
        target.add_metric([job_id], progress["steps"])
        if progress.get("images_per_second") is not None:
            speed.add_metric([job_id], progress["images_per_second"])
    return [step, target, speed]


def reported_families(figures: dict[str, dict[str, float]]) -> list[Metric]:
    """What each worker reported through Redis (workers.shared.fleet_metrics)."""
    batch = HistogramMetricFamily(
        "ganforge_generate_batch_images",
        "Images rendered per forward pass of the generate lane.",
        labels=["worker"],
    )
    forward = HistogramMetricFamily(
        "ganforge_generate_forward_seconds",
        "Time of one forward pass of the generate lane (the network alone).",
        labels=["worker"],
    )
    answered = CounterMetricFamily(
        "ganforge_generate_requests", "Generate requests answered, by outcome.", labels=["worker", "outcome"]
    )
    cache = {
        "hits": CounterMetricFamily(
            "ganforge_model_cache_hits", "Loads served from a model cache.", labels=["worker", "cache"]
        ),
        "misses": CounterMetricFamily(
            "ganforge_model_cache_misses", "Loads a model cache had to make.", labels=["worker", "cache"]
        ),
        "bytes": GaugeMetricFamily(
            "ganforge_model_cache_bytes", "Memory a model cache's networks take.", labels=["worker", "cache"]
        ),
        "entries": GaugeMetricFamily(
            "ganforge_model_cache_entries", "Networks a model cache holds.", labels=["worker", "cache"]
        ),
    }
    for worker, fields in sorted(figures.items()):
        for family, spec in ((batch, fleet_metrics.BATCH_IMAGES), (forward, fleet_metrics.FORWARD_SECONDS)):
            observed = spec.read(fields)
            if observed is not None:
                buckets, total = observed
                family.add_metric([worker], [(floatToGoString(le), n) for le, n in buckets], total)
        for outcome in fleet_metrics.OUTCOMES:
            answered.add_metric([worker, outcome], fields.get(f"generate_requests:{outcome}", 0.0))
        for name, values in fleet_metrics.cache_fields(fields).items():
            for figure, value in values.items():
                cache[figure].add_metric([worker, name], value)
    return [batch, forward, answered, *cache.values()]
