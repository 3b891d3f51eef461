"""The worker process: an RQ worker that runs each job in its own process (no fork per job).

RQ's default worker forks a child per job. A child forked from a parent that has used torch can
deadlock, CUDA cannot start in such a child, and every model it loaded dies with it. `InProcessWorker`
is RQ's SimpleWorker plus a heartbeat thread: SimpleWorker sends no heartbeats while a job runs, so a
training job of hours would look abandoned. With heartbeats, a worker killed mid-job is noticed within
HEARTBEAT_TTL_SECONDS.

Its job data and results are msgpack (workers.shared.serialization), never pickle. A Redis at its memory limit
(maxmemory, noeviction) refuses writes with OOM, and RQ's worker quits on any error in its loop. This
one tolerates OOM in each step of that loop (suspension check, maintenance, dequeue, job, heartbeat)
and waits it out, so a full Redis does not take the workers down with it; a job whose outcome could
not be stored is found abandoned later, like a killed worker's. Likewise it takes no job while the store
(GANFORGE_STORAGE_URL) is unreachable or refuses its credentials: the jobs wait in their queue.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator

from redis.exceptions import OutOfMemoryError
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.worker import WorkerStatus

from workers.jobs.heartbeat import HEARTBEAT_SECONDS, HEARTBEAT_TTL_SECONDS, repeating
from workers.jobs.recovery import recover_abandoned_training
from workers.jobs.runtime import current_runtime
from workers.shared.contract import TRAINING_QUEUE
from workers.shared.object_store import StoreUnavailable
from workers.shared.serialization import DataSerializer

MAINTENANCE_SECONDS = 15
REDIS_FULL_WAIT_SECONDS = 5
STORE_WAIT_SECONDS = 5


class InProcessWorker(SimpleWorker):
    """Also, on a training queue, queues again the training jobs whose worker died (workers.jobs.recovery),
    checked every MAINTENANCE_SECONDS or so while idle."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("worker_ttl", 2 * MAINTENANCE_SECONDS)
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        kwargs.setdefault("serializer", DataSerializer)
        super().__init__(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        with self._tolerating_full_redis("maintenance"):
            super().run_maintenance_tasks()  # RQ's cleanup marks jobs with stopped heartbeats as abandoned
        if TRAINING_QUEUE in self.queue_names():
            runtime = current_runtime()
            try:
                recover_abandoned_training(
                    runtime.storage, runtime.redis, runtime.settings.max_job_recoveries
                )
            except Exception:  # a failed recovery is retried next time; it must not stop the worker
                self.log.exception("recovering abandoned training jobs failed")

    def check_for_suspension(self, burst: bool) -> None:
        with self._tolerating_full_redis("the suspension check"):
            super().check_for_suspension(burst)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None):
        self._wait_for_store()
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except OutOfMemoryError:
                self.log.warning("Redis is full (maxmemory): taking no job for %d s", REDIS_FULL_WAIT_SECONDS)
                time.sleep(REDIS_FULL_WAIT_SECONDS)

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        with self._tolerating_full_redis("a heartbeat"):
            super().heartbeat(timeout, pipeline)

    def execute_job(self, job: Job, queue: Queue) -> None:
        with self._tolerating_full_redis(f"job {job.id}'s outcome (it will be found abandoned)"):
            execution = self.prepare_execution(job)
            beat = functools.partial(self.maintain_heartbeats, job, execution)
            with repeating(HEARTBEAT_SECONDS, beat, name=f"heartbeat-{job.id}"):
                self.perform_job(job, queue, execution)
            self.set_state(WorkerStatus.IDLE)

    def _wait_for_store(self) -> None:
        """Until a remote store answers (the local directory is not checked: a job reports its errors)."""
        store = current_runtime().storage.store
        while store.remote:
            try:
                store.check()
                return
            except StoreUnavailable as error:
                self.log.warning("%s: taking no job for %d s", error, STORE_WAIT_SECONDS)
                self.heartbeat()
                time.sleep(STORE_WAIT_SECONDS)

    @contextlib.contextmanager
    def _tolerating_full_redis(self, what: str) -> Iterator[None]:
        try:
            yield
        except OutOfMemoryError:
            self.log.warning("Redis is full (maxmemory): %s could not be stored", what)
            time.sleep(REDIS_FULL_WAIT_SECONDS)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return HEARTBEAT_TTL_SECONDS
