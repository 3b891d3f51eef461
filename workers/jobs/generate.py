"""The sampling worker's side of the generate lane (workers.shared.generate_lane): take the waiting requests
as one batch, render them (workers.jobs.batching: one forward pass per model and checkpoint), answer each.

Dynamic batching, in the spirit of TorchServe's batch_size / max_batch_delay: the consumer takes the
first request as soon as it arrives, then whatever else is waiting, waiting up to `batch_max_delay_ms`
for more, up to `batch_max_images` images per forward pass. Under load the queue fills while a batch
renders, so batches form by themselves; a lone request waits at most the delay.

Each request is moved atomically from the queue onto this consumer's `taken` list (LMOVE) and stays
there until answered, so a consumer that dies loses nothing: once its heartbeat lapses, any other
consumer puts its taken requests back on the queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from workers.jobs.batching import RenderedPass, encode_results, model_groups, render_pass
from workers.jobs.heartbeat import HEARTBEAT_SECONDS, HEARTBEAT_TTL_SECONDS, repeating
from workers.jobs.runtime import Runtime
from workers.shared import fleet_metrics
from workers.shared.generate_lane import (
    CONSUMERS_KEY,
    MAX_ATTEMPTS,
    QUEUE_KEY,
    Answer,
    GenerateCall,
    alive_key,
    answer,
    taken_key,
)
from workers.shared.serialization import UnreadableData
from workers.shared.webhooks import lane_job_ended

log = logging.getLogger("ganforge.generate")

TAKE_BLOCK_SECONDS = 1  # how long one blocking take waits before the loop checks for a stop
TAKES_PER_ROUND_TRIP = 16


class GenerateConsumer:
    """Renders on the calling thread; encodes PNGs and answers on a thread of its own, so a pass's
    encoding overlaps the next pass's rendering."""

    def __init__(self, runtime: Runtime, name: str | None = None, worker: str | None = None):
        """`worker` names this process in /metrics (the RQ worker's name); default: the consumer's."""
        self.runtime = runtime
        self.redis: Redis = runtime.redis
        self.name = name or secrets.token_hex(8)
        self.worker = worker or self.name
        self.taken = taken_key(self.name)
        self.answering = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"generate-answer-{self.name}")
        self._give_back_needed = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Serve batches until `stop` is set; a Redis outage is waited out. A heartbeat thread keeps
        this consumer's alive key fresh, so a long render never lets it lapse."""
        with contextlib.suppress(RedisError):
            self._beat()  # alive before the first take
        with repeating(HEARTBEAT_SECONDS, self._beat, name=f"generate-heartbeat-{self.name}"):
            while not stop.is_set():
                try:
                    if self._give_back_needed.is_set():
                        self._give_back_taken()
                    self.serve(self.take_batch())
                except RedisError as error:  # unreachable, or full (OOM at its maxmemory)
                    log.warning("Redis failed (%s); retrying in a second", error)
                    self._give_back_needed.set()
                    stop.wait(1)
            self.answering.shutdown(wait=True)
        with contextlib.suppress(RedisError):
            self.redis.delete(alive_key(self.name))
            self.redis.srem(CONSUMERS_KEY, self.name)

    def take_batch(self) -> list[GenerateCall]:
        """Block for the first request, then take what is waiting (or arrives within the delay) up to
        the batch's image cap. A request is never split, so the last one taken may pass the cap."""
        settings = self.runtime.settings
        first = self.redis.blmove(QUEUE_KEY, self.taken, TAKE_BLOCK_SECONDS, "LEFT", "RIGHT")
        if first is None:
            return []
        calls = self._readable([first])
        if not calls:
            return []
        images = len(calls[0].seeds)
        deadline = time.monotonic() + settings.batch_max_delay_ms / 1000
        while images < settings.batch_max_images:
            moved = self._take_waiting(min(settings.batch_max_images - images, TAKES_PER_ROUND_TRIP))
            for call in self._readable(moved):
                calls.append(call)
                images += len(call.seeds)
            if not moved:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.0005)
        return calls

    def _readable(self, taken: list[bytes]) -> list[GenerateCall]:
        """The requests among `taken`; anything else on the queue (not JSON a GenerateCall was made from)
        is dropped from this consumer's taken list and logged: data, never run, never put back."""
        calls = []
        for raw in taken:
            try:
                calls.append(GenerateCall.decode(raw))
            except UnreadableData as error:
                log.error("dropped an unreadable entry of the generate queue: %s", error)
                self.redis.lrem(self.taken, 1, raw)
        return calls

    def _take_waiting(self, most: int) -> list[bytes]:
        """Up to `most` waiting requests, moved onto this consumer's taken list in one round trip."""
        with self.redis.pipeline(transaction=False) as pipeline:
            for _ in range(most):
                pipeline.lmove(QUEUE_KEY, self.taken, "LEFT", "RIGHT")
            return [raw for raw in pipeline.execute() if raw is not None]

    def serve(self, calls: list[GenerateCall]) -> list[Future[None]]:
        """Render `calls`, one forward pass per model and checkpoint with at most `batch_max_images`
        images, fewest first, and hand each pass to the answering thread as soon as it is rendered.
        Returns when the last pass is rendered; the futures finish when the answers are sent."""
        passes = [
            group
            for chunk in image_capped_chunks(calls, self.runtime.settings.batch_max_images)
            for group in model_groups(chunk)
        ]
        return [
            self.answering.submit(self._answer, *rendered)
            for group in passes
            for rendered in self._render(group)
        ]

    def _render(self, calls: list[GenerateCall]) -> list[tuple[list[GenerateCall], RenderedPass | Answer]]:
        """The pass, or if it fails, each call rendered on its own: its pass or the error as its answer."""
        try:
            return [(calls, render_pass(self.runtime, calls))]
        except Exception:
            log.exception("rendering a batch of %d requests failed; rendering them one by one", len(calls))
        alone: list[tuple[list[GenerateCall], RenderedPass | Answer]] = []
        for call in calls:
            try:
                alone.append(([call], render_pass(self.runtime, [call])))
            except Exception as error:
                alone.append(([call], Answer(None, f"{type(error).__name__}: {error}")))
        return alone

    def _answer(self, calls: list[GenerateCall], outcome: RenderedPass | Answer) -> None:
        """Encode a rendered pass and answer its calls in one round trip, taking them off the taken
        list, with the pass's figures for /metrics. If Redis fails here, the loop puts this consumer's
        taken requests back on the queue."""
        try:
            if isinstance(outcome, RenderedPass):
                answers = {job_id: Answer(result) for job_id, result in encode_results(outcome).items()}
            else:
                answers = {call.job_id: outcome for call in calls}
            with self.redis.pipeline(transaction=False) as pipeline:
                self._record(pipeline, calls, outcome)  # first: a caller that has its answer sees them
                for call in calls:
                    answer(pipeline, call, answers[call.job_id])
                    pipeline.lrem(self.taken, 1, call.encode())
                pipeline.execute()
            for call in calls:
                lane_job_ended(self.redis, call, answers[call.job_id])
        except RedisError:
            log.warning("answering %d requests failed: Redis is unreachable", len(calls))
            self._give_back_needed.set()
        except Exception:
            log.exception("answering %d requests failed", len(calls))
            self._give_back_needed.set()

    def _record(self, pipeline: Pipeline, calls: list[GenerateCall], outcome: RenderedPass | Answer) -> None:
        """Add this pass's figures, and the model caches', to `pipeline` (workers.shared.fleet_metrics)."""
        if isinstance(outcome, RenderedPass):
            images, seconds = len(outcome.images), outcome.forward_seconds
            fleet_metrics.record_pass(pipeline, self.worker, images, seconds, len(calls))
        else:
            fleet_metrics.record_answers(pipeline, self.worker, "failed", len(calls))
        self._record_caches(pipeline)

    def _record_caches(self, pipeline: Pipeline) -> None:
        caches = {"generators": self.runtime.generators, "inversion": self.runtime.inversion}
        figures = {name: cache.figures() for name, cache in caches.items()}
        fleet_metrics.record_caches(pipeline, self.worker, figures)

    def _give_back_taken(self) -> None:
        """Put this consumer's taken requests back at the front of the queue, in order."""
        self.answering.submit(lambda: None).result()  # let the answers in flight finish first
        self._give_back_needed.clear()
        while self.redis.lmove(self.taken, QUEUE_KEY, "RIGHT", "LEFT") is not None:
            pass

    def _beat(self) -> None:
        """Say this consumer is alive (and keep its figures for /metrics), and give back dead consumers'
        requests."""
        with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.set(alive_key(self.name), 1, ex=HEARTBEAT_TTL_SECONDS)
            pipeline.sadd(CONSUMERS_KEY, self.name)
            self._record_caches(pipeline)
            pipeline.execute()
        recover_dead_consumers(self.redis)


def image_capped_chunks(calls: list[GenerateCall], max_images: int) -> list[list[GenerateCall]]:
    """`calls` in order, cut into runs of at most `max_images` images (a larger call alone)."""
    chunks: list[list[GenerateCall]] = []
    images = max_images
    for call in calls:
        if images + len(call.seeds) > max_images:
            chunks.append([])
            images = 0
        chunks[-1].append(call)
        images += len(call.seeds)
    return chunks


def recover_dead_consumers(redis: Redis) -> int:
    """Put the requests of consumers whose heartbeat lapsed back at the front of the queue, in order;
    a request taken MAX_ATTEMPTS times fails instead. Returns how many requests were put back."""
    recovered = 0
    for name in redis.smembers(CONSUMERS_KEY):
        consumer = name.decode()
        if redis.exists(alive_key(consumer)):
            continue
        claimed = f"ganforge:generate:recovering:{secrets.token_hex(8)}"
        try:
            # Atomic: of two consumers recovering the same list, one wins.
            redis.rename(taken_key(consumer), claimed)
        except ResponseError:  # it had taken nothing, or another consumer got there first
            redis.srem(CONSUMERS_KEY, consumer)
            continue
        calls = []
        for raw in redis.lrange(claimed, 0, -1):
            try:
                calls.append(GenerateCall.decode(raw))
            except UnreadableData as error:
                log.error("dropped an unreadable entry of consumer %s's taken list: %s", consumer, error)
        ended: list[tuple[GenerateCall, Answer]] = []
        with redis.pipeline(transaction=True) as pipeline:
            for call in reversed(calls):
                again = dataclasses.replace(call, attempts=call.attempts + 1)
                if again.attempts >= MAX_ATTEMPTS:
                    stopped = f"the worker rendering it stopped {again.attempts} times"
                    answer(pipeline, call, Answer(None, stopped))
                    ended.append((call, Answer(None, stopped)))
                else:
                    pipeline.lpush(QUEUE_KEY, again.encode())
                    recovered += 1
            pipeline.delete(claimed)
            pipeline.srem(CONSUMERS_KEY, consumer)
            pipeline.execute()
        for call, outcome in ended:
            lane_job_ended(redis, call, outcome)
        log.warning("consumer %s stopped; its %d requests go back on the queue", consumer, len(calls))
    return recovered
