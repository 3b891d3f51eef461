"""Rendering a batch of generate requests: one forward pass per model and checkpoint, then each
request's images split back out and encoded. workers.jobs.generate forms the batches, and encodes
one pass while the next renders.

Sampling runs the generator in eval mode, so an image depends on its own latent and label only: a seed
gives the same image alone or inside a batch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.sampling import generate, latents_for_seeds
from workers.jobs.runtime import Runtime
from workers.shared.generate_lane import GenerateCall
from workers.shared.imaging import grid_png, png_bytes
from workers.shared.response_bodies import GeneratedImage, GeneratedImages
from workers.shared.results import b64, document, picture


def model_groups(calls: list[GenerateCall]) -> list[list[GenerateCall]]:
    """The calls grouped by model and checkpoint (one forward pass each), fewest images first: a group
    is answered as soon as it is rendered, so a few images for one model never wait behind a large
    pass for another."""
    groups: dict[tuple[str, int], list[GenerateCall]] = defaultdict(list)
    for call in calls:
        groups[(call.model_id, call.checkpoint)].append(call)
    return sorted(groups.values(), key=lambda group: sum(len(call.seeds) for call in group))


@dataclass(frozen=True)
class RenderedPass:
    """One forward pass's images (uint8, N×C×H×W), the calls' images in their order, and how long the
    pass took (the network alone: not loading it, not encoding)."""

    calls: list[GenerateCall]
    images: np.ndarray
    forward_seconds: float


def render_pass(runtime: Runtime, calls: list[GenerateCall]) -> RenderedPass:
    """The images of calls for one model and checkpoint, in one forward pass."""
    model_id, checkpoint = calls[0].model_id, calls[0].checkpoint
    manifest = runtime.storage.read_model(model_id)
    if manifest is None:
        raise FileNotFoundError(f"model {model_id} does not exist")
    generator = runtime.generator(model_id, checkpoint)
    seeds = [seed for call in calls for seed in call.seeds]
    truncation = torch.tensor([call.truncation for call in calls for _ in call.seeds])
    latents = latents_for_seeds(seeds, generator.spec.latent_dim) * truncation[:, None]
    labels = None
    if manifest.classes and calls[0].labels is not None:
        labels = torch.tensor([manifest.classes.index(label) for call in calls for label in call.labels])
    start = time.perf_counter()
    images = generate(generator, latents, labels)  # a NumPy array: on CUDA, the pass has finished
    return RenderedPass(calls, images, time.perf_counter() - start)


def encode_results(rendered: RenderedPass) -> dict[str, dict[str, Any]]:
    """Each call's result (workers.shared.results' shape, PNG-encoded) by job id."""
    results, start = {}, 0
    for call in rendered.calls:
        own = rendered.images[start : start + len(call.seeds)]
        start += len(call.seeds)
        results[call.job_id] = _result(call, own, batch_images=len(rendered.images))
    return results


def _result(call: GenerateCall, images: np.ndarray, batch_images: int) -> dict[str, Any]:
    headers = {
        "X-Seeds": ",".join(map(str, call.seeds)),
        "X-Checkpoint": str(call.checkpoint),
        "X-Batch-Images": str(batch_images),  # images rendered in the same forward pass
    }
    if call.format == "png":
        return picture(grid_png(images), headers)
    labels = call.labels or [None] * len(call.seeds)
    payload = GeneratedImages(
        model_id=call.model_id,
        checkpoint=call.checkpoint,
        images=[
            GeneratedImage(seed=seed, label=label, png_base64=b64(png_bytes(image)))
            for seed, label, image in zip(call.seeds, labels, images, strict=True)
        ],
    )
    return document(payload.model_dump(), headers)
