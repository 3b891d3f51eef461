"""The evaluation job: judge one checkpoint of a model (POST /v1/models/{id}/evaluations)."""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from workers.evaluation import ModelEvaluator
from workers.progress import publish_progress
from workers.runtime import current_runtime
from workers.storage import utc_now


def evaluate_model(model_id: str, step: int, samples: int, metrics: list[str]) -> dict[str, Any]:
    """FID, KID and precision/recall of checkpoint `step`'s EMA generator on `samples` images; the row
    is stored with the model and returned. Progress (phase, done, total) is published as it goes."""
    runtime = current_runtime()
    manifest = runtime.storage.read_model(model_id)
    if manifest is None:
        raise FileNotFoundError(f"model {model_id} does not exist")
    job = get_current_job()

    def report(phase: str, done: int, total: int) -> None:
        if job is not None:
            snapshot = {"phase": phase, "done": done, "total": total, "updated_at": utc_now().isoformat()}
            publish_progress(runtime.redis, job.id, snapshot)

    generator = runtime.generator(model_id, step)
    return ModelEvaluator(runtime, manifest, report).evaluate(generator, step, samples, metrics, "request")
