"""The worker process: an RQ worker that runs each job in its own process (no fork per job).

RQ's default worker forks a child per job. A child forked from a parent that has used torch can
deadlock, CUDA cannot start in such a child, and every model it loaded dies with it. `InProcessWorker`
is RQ's SimpleWorker plus a heartbeat thread: SimpleWorker sends no heartbeats while a job runs, so a
training job of hours would look abandoned. With heartbeats, a worker killed mid-job is noticed within
HEARTBEAT_TTL_SECONDS.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.worker import WorkerStatus

HEARTBEAT_SECONDS = 10
HEARTBEAT_TTL_SECONDS = 3 * HEARTBEAT_SECONDS


class InProcessWorker(SimpleWorker):
    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        with self._heartbeats(job, execution):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return HEARTBEAT_TTL_SECONDS

    @contextlib.contextmanager
    def _heartbeats(self, job: Job, execution: Execution) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(Exception):  # a missed beat is retried on the next tick
                    self.maintain_heartbeats(job, execution)

        thread = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
