"""Finding training jobs whose worker died, and queueing them again, a bounded number of times.

A worker killed mid-run (kill -9, a lost machine) leaves its model's manifest saying `running`. Its RQ
job stops sending heartbeats; RQ's registry cleanup then marks it failed as abandoned. Such a job is
queued again under the same id, and `train_model` resumes it from the newest checkpoint, so at most
one checkpoint interval of steps is redone. A job whose workers keep dying (one that runs the worker
out of memory, say) is queued again at most `max_recoveries` times, then fails saying why: it must not
take down a worker after worker for ever.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from workers.shared.progress import publish_progress, read_progress
from workers.shared.queueing import enqueue_training
from workers.shared.serialization import DataSerializer
from workers.shared.storage import ModelManifest, Storage, utc_now
from workers.shared.webhooks import TrainingWebhook

log = logging.getLogger("ganforge.recovery")

ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def recover_abandoned_training(storage: Storage, redis: Redis, max_recoveries: int) -> list[str]:
    """Queue again every training job that its manifest calls running but no worker runs or will run,
    unless it was already queued again `max_recoveries` times: that one fails. Returns the ids queued."""
    recovered = []
    for manifest in storage.list_models():
        if manifest.status != "running":
            continue
        job_id = manifest.training_job_id
        try:
            status = Job.fetch(job_id, connection=redis, serializer=DataSerializer).get_status()
        except NoSuchJobError:
            status = None
        if status in ALIVE:
            continue
        if manifest.recoveries >= max_recoveries:
            reason = (
                f"its worker stopped before it finished, {manifest.recoveries + 1} times; not queued again "
                f"after {max_recoveries} restarts (GANFORGE_MAX_JOB_RECOVERIES)"
            )
            _fail(storage, redis, manifest, reason)
            continue
        log.warning("training job %s was abandoned (RQ status %s); resuming it", job_id, status)
        storage.update_model(manifest.id, status="queued", error=None, recoveries=manifest.recoveries + 1)
        enqueue_training(redis, manifest.id, job_id)
        recovered.append(job_id)
    return recovered


def _fail(storage: Storage, redis: Redis, manifest: ModelManifest, reason: str) -> None:
    """Mark the job failed on disk and in its live progress (which ends its event streams), and send its
    `completed` webhook."""
    log.error("training job %s failed: %s", manifest.training_job_id, reason)
    storage.update_model(manifest.id, status="failed", error=reason, finished_at=utc_now())
    last = read_progress(redis, manifest.training_job_id) or {"step": 0, "steps": manifest.spec.steps}
    ended = {"status": "failed", "error": reason, "eta_seconds": None, "updated_at": utc_now().isoformat()}
    publish_progress(redis, manifest.training_job_id, last | ended)
    TrainingWebhook(redis, storage, manifest).event("completed", f"failed-{last['step']}", last | ended)
