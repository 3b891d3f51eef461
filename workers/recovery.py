"""Finding training jobs whose worker died, and queueing them again.

A worker killed mid-run (kill -9, a lost machine) leaves its model's manifest saying `running`. Its RQ
job stops sending heartbeats; RQ's registry cleanup then marks it failed as abandoned. Such a job is
queued again under the same id, and `train_model` resumes it from the newest checkpoint, so at most
one checkpoint interval of steps is redone.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from workers.queueing import enqueue_training
from workers.storage import Storage

log = logging.getLogger("ganforge.recovery")

ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def recover_abandoned_training(storage: Storage, redis: Redis) -> list[str]:
    """Queue again every training job that its manifest calls running but no worker runs or will run.
    Returns their ids."""
    recovered = []
    for manifest in storage.list_models():
        if manifest.status != "running":
            continue
        try:
            status = Job.fetch(manifest.training_job_id, connection=redis).get_status()
        except NoSuchJobError:
            status = None
        if status in ALIVE:
            continue
        log.warning(
            "training job %s was abandoned (RQ status %s); resuming it", manifest.training_job_id, status
        )
        storage.update_model(manifest.id, status="queued", error=None)
        enqueue_training(redis, manifest.id, manifest.training_job_id)
        recovered.append(manifest.training_job_id)
    return recovered
