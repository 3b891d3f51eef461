"""Evaluating a model's checkpoints on a worker: the data set's real features (computed once per data set
and size, then read from storage), the fakes' features, the figures, and the row stored with the model.

`evaluate_model` is the evaluation job (POST /v1/models/{id}/evaluations); the training job uses
`ModelEvaluator` between steps (workers.jobs.training)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from rq import get_current_job

from models.evaluation import FeatureSet, Progress, fake_features, real_features, score
from models.metrics.inception import load_feature_network
from models.networks import Generator
from workers.jobs.runtime import Runtime, current_runtime
from workers.shared.atomic import atomic_write_bytes, atomic_write_text
from workers.shared.datasets.packed import read_images
from workers.shared.progress import publish_progress
from workers.shared.storage import ModelManifest, utc_now


class ModelEvaluator:
    def __init__(self, runtime: Runtime, manifest: ModelManifest, on_progress: Progress):
        self.runtime = runtime
        self.manifest = manifest
        self.on_progress = on_progress
        self._real: FeatureSet | None = None

    def evaluate(
        self,
        generator: Generator,
        step: int,
        samples: int,
        metrics: Sequence[str],
        source: str,
        per_class: bool = True,
    ) -> dict:
        """Judge `generator` (the EMA generator of checkpoint `step`) and store the row; returns it.
        `per_class`: FID per label too, for conditional models."""
        started = time.perf_counter()
        network = load_feature_network(self.runtime.device)
        real = self.real_features()
        fake = fake_features(network, generator, samples, real.labels, self.on_progress)
        row = {
            "step": step,
            "samples": samples,
            "real_images": len(real.features),
            "metrics": list(metrics),
            **score(real, fake, metrics, self.manifest.classes, per_class),
            "seconds": round(time.perf_counter() - started, 2),
            "device": str(self.runtime.device),
            "source": source,
            "created_at": utc_now().isoformat(),
        }
        path = self.runtime.storage.evaluation_file(self.manifest.id, step, samples)
        atomic_write_text(path, json.dumps(row, indent=2))
        self.runtime.storage.publish(path)
        return row

    def real_features(self) -> FeatureSet:
        """The data set's features at this model's size: from storage, else computed and stored."""
        if self._real is not None:
            return self._real
        storage, manifest = self.runtime.storage, self.manifest
        path = storage.real_features_file(manifest.dataset_id, manifest.image_size)
        if storage.fetch(path):
            self._real = FeatureSet.from_bytes(path.read_bytes())
        else:
            images, labels = read_images(storage.dataset_files(manifest.dataset_id))
            network = load_feature_network(self.runtime.device)
            self._real = real_features(network, images, labels, manifest.image_size, self.on_progress)
            atomic_write_bytes(path, self._real.to_bytes())
            storage.publish(path)
        if not manifest.conditional:
            self._real = FeatureSet(self._real.features, None)
        return self._real


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
