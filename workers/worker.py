"""The worker process: an RQ worker that runs each job in its own process (no fork per job).

RQ's default worker forks a child per job. A child forked from a parent that has used torch can
deadlock, CUDA cannot start in such a child, and every model it loaded dies with it. `InProcessWorker`
is RQ's SimpleWorker plus a heartbeat thread: SimpleWorker sends no heartbeats while a job runs, so a
training job of hours would look abandoned. With heartbeats, a worker killed mid-job is noticed within
HEARTBEAT_TTL_SECONDS.
"""

from __future__ import annotations

import functools

from rq import Queue, SimpleWorker
from rq.job import Job
from rq.worker import WorkerStatus

from workers.contract import TRAINING_QUEUE
from workers.heartbeat import HEARTBEAT_SECONDS, HEARTBEAT_TTL_SECONDS, repeating
from workers.recovery import recover_abandoned_training
from workers.runtime import current_runtime

MAINTENANCE_SECONDS = 15


class InProcessWorker(SimpleWorker):
    """Also, on a training queue, queues again the training jobs whose worker died (workers.recovery),
    checked every MAINTENANCE_SECONDS or so while idle."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("worker_ttl", 2 * MAINTENANCE_SECONDS)
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # RQ's cleanup marks jobs with stopped heartbeats as abandoned
        if TRAINING_QUEUE in self.queue_names():
            runtime = current_runtime()
            try:
                recover_abandoned_training(runtime.storage, runtime.redis)
            except Exception:  # a failed recovery is retried next time; it must not stop the worker
                self.log.exception("recovering abandoned training jobs failed")

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        beat = functools.partial(self.maintain_heartbeats, job, execution)
        with repeating(HEARTBEAT_SECONDS, beat, name=f"heartbeat-{job.id}"):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return HEARTBEAT_TTL_SECONDS
