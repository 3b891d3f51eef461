"""Judging a generator: Inception-v3 features of its images against those of the data it learnt from.

- FID (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the two feature sets.
  Lower is better; it is biased upward for small sets, so only figures of equal sample counts compare.
- KID (Bińkowski et al. 2018): an unbiased squared MMD with a cubic kernel, mean ± spread over subsets;
  near 0 for a generator indistinguishable from the data, and comparable across sample counts.
- Precision / recall (Kynkäänniemi et al. 2019): the share of fakes inside the real images' k-NN
  manifold (fidelity) and of reals inside the fakes' (coverage; low recall is mode collapse).

The fakes come from one seeded CPU stream of latents, so the same checkpoint always gets the same figure
and two checkpoints are judged on the same latents. A conditional model draws each fake's label from the
real labels (the data's class balance) and also gets FID per class.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.metrics.distances import frechet_distance, kernel_inception_distance, precision_recall
from models.metrics.inception import FeatureNetwork
from models.networks import Generator
from models.resizing import resize_images
from models.sampling import generate

REAL_FEATURES_MAX = 5_000  # real images featurised per data set and size (a fixed random subset)
EVALUATION_SEED = 0
BATCH = 250  # images rendered and featurised at a time: bounds memory whatever the sample count
MIN_CLASS_SAMPLES = 10  # FID per class needs a few images of the class on both sides

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class FeatureSet:
    features: np.ndarray  # (N, 2048) float64
    labels: np.ndarray | None  # (N,) class indices, for conditional models

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        extra = {"labels": self.labels} if self.labels is not None else {}
        np.savez(buffer, features=self.features.astype(np.float32), **extra)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureSet:
        with np.load(io.BytesIO(data)) as stored:
            labels = stored["labels"] if "labels" in stored.files else None
            return cls(stored["features"].astype(np.float64), labels)


def real_features(
    network: FeatureNetwork,
    images: np.ndarray,
    labels: np.ndarray | None,
    image_size: int,
    on_progress: Progress = _no_progress,
) -> FeatureSet:
    """Features of at most REAL_FEATURES_MAX of the data set's images (a fixed random subset), resized to
    the model's size the way training resizes them."""
    count = len(images)
    chosen = np.arange(count)
    if count > REAL_FEATURES_MAX:
        chosen = np.sort(
            np.random.default_rng(EVALUATION_SEED).choice(count, REAL_FEATURES_MAX, replace=False)
        )
    chunks = []
    for start in range(0, len(chosen), BATCH):
        batch = torch.from_numpy(np.asarray(images[chosen[start : start + BATCH]]))
        chunks.append(network.features(resize_images(batch, image_size)))
        on_progress("real features", min(start + BATCH, len(chosen)), len(chosen))
    return FeatureSet(np.concatenate(chunks), np.asarray(labels)[chosen] if labels is not None else None)


def fake_features(
    network: FeatureNetwork,
    generator: Generator,
    samples: int,
    label_pool: np.ndarray | None,
    on_progress: Progress = _no_progress,
) -> FeatureSet:
    """Features of `samples` images of the generator; conditional generators draw each image's label
    from `label_pool` (the real labels)."""
    stream = torch.Generator(device="cpu").manual_seed(EVALUATION_SEED)
    latent_dim = generator.spec.latent_dim
    labels = None
    if label_pool is not None:
        picks = torch.randint(len(label_pool), (samples,), generator=stream)
        labels = torch.as_tensor(np.asarray(label_pool)[picks.numpy()], dtype=torch.long)
    chunks = []
    for start in range(0, samples, BATCH):
        size = min(BATCH, samples - start)
        latents = torch.randn(size, latent_dim, generator=stream)
        batch_labels = labels[start : start + size] if labels is not None else None
        chunks.append(network.features(generate(generator, latents, batch_labels)))
        on_progress("samples", start + size, samples)
    return FeatureSet(np.concatenate(chunks), labels.numpy() if labels is not None else None)


def score(
    real: FeatureSet, fake: FeatureSet, metrics: Sequence[str], classes: Sequence[str], per_class: bool = True
) -> dict:
    """The asked-for metrics of the fakes against the reals; with `per_class`, also `per_class_fid` for
    conditional models (the classes with at least MIN_CLASS_SAMPLES images on both sides)."""
    figures: dict = {}
    if "fid" in metrics:
        figures["fid"] = frechet_distance(real.features, fake.features)
        if per_class and real.labels is not None and fake.labels is not None:
            figures["per_class_fid"] = {
                name: frechet_distance(
                    real.features[real.labels == index], fake.features[fake.labels == index]
                )
                for index, name in enumerate(classes)
                if min((real.labels == index).sum(), (fake.labels == index).sum()) >= MIN_CLASS_SAMPLES
            }
    if "kid" in metrics:
        figures["kid"], figures["kid_std"] = kernel_inception_distance(real.features, fake.features)
    if "precision_recall" in metrics:
        figures["precision"], figures["recall"] = precision_recall(real.features, fake.features)
    return figures
