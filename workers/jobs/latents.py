"""Sampling-queue jobs on the latent space: interpolation, arithmetic, inversion and transform.

Latents arrive as definitions the API has already resolved (no names): {"seed": s}, {"seeds": [...]}
(their mean) or {"vector": [...]}. Labels arrive as class names the API has checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.inversion import invert
from models.latents import interpolate as interpolate_keys
from models.latents import variations as latent_variations
from models.latents import weighted_sum
from models.sampling import generate, latent_for_seed, latents_for_seeds
from workers.jobs.runtime import Runtime, current_runtime
from workers.shared.imaging import gif_bytes, grid_png, png_bytes, strip, tile
from workers.shared.response_bodies import (
    ArithmeticResult,
    InterpolationFrames,
    Inversion,
    LabelledImage,
    LatentFrame,
    Transformation,
)
from workers.shared.results import b64, document, header_list, picture
from workers.shared.storage import NamedLatentRecord, utc_now

Definition = dict[str, Any]


def latent_of(definition: Definition, latent_dim: int) -> torch.Tensor:
    if "seed" in definition:
        return latent_for_seed(definition["seed"], latent_dim)
    if "seeds" in definition:
        return latents_for_seeds(definition["seeds"], latent_dim).mean(dim=0)
    return torch.tensor(definition["vector"], dtype=torch.float32)


def _label_indices(runtime: Runtime, model_id: str, labels: list[str] | None) -> torch.Tensor | None:
    if labels is None:
        return None
    classes = runtime.storage.read_model(model_id).classes
    return torch.tensor([classes.index(label) for label in labels])


def _frames(images: np.ndarray, latents: torch.Tensor) -> list[LatentFrame]:
    return [
        LatentFrame(png_base64=b64(png_bytes(image)), latent=latent.tolist())
        for image, latent in zip(images, latents, strict=True)
    ]


def interpolate(
    model_id: str,
    checkpoint: int,
    keys: list[Definition],
    steps: int,
    method: str,
    labels: list[str] | None,
    interpolate_labels: bool,
    truncation: float,
    format: str,
) -> dict[str, Any]:
    """Frames from key to key. With `interpolate_labels`, `labels` holds one label per key and the
    label embedding walks from key to key with the latent; otherwise one label per frame."""
    runtime = current_runtime()
    generator = runtime.generator(model_id, checkpoint)
    dim = generator.spec.latent_dim
    latents = interpolate_keys(torch.stack([latent_of(key, dim) for key in keys]), steps, method)
    indices = _label_indices(runtime, model_id, labels)
    embedding = None
    if interpolate_labels:
        with torch.no_grad():
            embedding = interpolate_keys(generator.embed(indices.to(_device(generator))).cpu(), steps, "lerp")
        indices = None
    elif indices is not None:
        indices = indices[:1].repeat(len(latents))
    images = generate(generator, latents, indices, truncation, embedding=embedding)
    headers = {"X-Frames": str(len(images)), "X-Checkpoint": str(checkpoint)}
    if format == "gif":
        return picture(gif_bytes(images), headers, media_type="image/gif")
    if format == "png":
        return picture(png_bytes(tile(images, columns=len(images))), headers)
    payload = InterpolationFrames(
        model_id=model_id, checkpoint=checkpoint, frames=_frames(images, latents * truncation)
    )
    return document(payload.model_dump(), headers)


def arithmetic(
    model_id: str,
    checkpoint: int,
    terms: list[tuple[float, Definition]],
    variations: int,
    noise: float,
    seed: int,
    label: str | None,
    truncation: float,
    format: str,
) -> dict[str, Any]:
    """Σ weight·latent; with `variations`, the result's neighbours too. Eight are laid out around the
    result in a 3×3 grid, as in the DCGAN paper's figure; any other count follows the result in a grid."""
    runtime = current_runtime()
    generator = runtime.generator(model_id, checkpoint)
    dim = generator.spec.latent_dim
    result = weighted_sum([(weight, latent_of(definition, dim)) for weight, definition in terms])
    latents = result[None]
    if variations:
        latents = torch.cat([latents, latent_variations(result, variations, noise, seed)])
    indices = _label_indices(runtime, model_id, [label] * len(latents) if label is not None else None)
    images = generate(generator, latents, indices, truncation)
    headers = {"X-Checkpoint": str(checkpoint), "X-Images": str(len(images))}
    if format == "json":
        payload = ArithmeticResult(
            model_id=model_id,
            checkpoint=checkpoint,
            latent=result.tolist(),
            png_base64=b64(png_bytes(images[0])),
            variations=_frames(images[1:], latents[1:]),
        )
        return document(payload.model_dump(), headers)
    if variations == 8:  # the result in the middle, its eight neighbours around it
        images = np.concatenate([images[1:5], images[:1], images[5:]])
    return picture(grid_png(images, columns=3 if variations == 8 else None), headers)


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


@dataclass
class Inverted:
    latent: torch.Tensor
    reconstruction: np.ndarray  # rendered as generate renders, so it matches every other endpoint's image
    mse: float  # between the target and the reconstruction, on [-1, 1] pixels
    steps: int
    used_encoder: bool


def _invert(
    runtime: Runtime,
    model_id: str,
    checkpoint: int,
    image: np.ndarray,
    label: str | None,
    steps: int,
    feature_weight: float | None = None,
) -> Inverted:
    """Encoder start (when the model has one), then optimisation."""
    generator = runtime.generator(model_id, checkpoint)
    encoder, discriminator = runtime.inversion_parts(model_id, checkpoint)
    target = torch.from_numpy(image).float().div(127.5).sub(1)
    index = _label_indices(runtime, model_id, [label]) if label is not None else None
    options = {"feature_weight": feature_weight} if feature_weight is not None else {}
    found = invert(
        generator,
        target,
        int(index[0]) if index is not None else None,
        encoder=encoder,
        discriminator=discriminator,
        steps=steps,
        **options,
    )
    reconstruction = generate(generator, found.latent[None], index)[0]
    mse = float(((torch.from_numpy(reconstruction).float() / 127.5 - 1 - target) ** 2).mean())
    return Inverted(found.latent, reconstruction, mse, found.steps, encoder is not None)


def _save_latent(runtime: Runtime, model_id: str, name: str | None, latent: torch.Tensor) -> None:
    if name:
        record = NamedLatentRecord(
            name=name, latent={"vector": latent.tolist()}, source="inverted image", created_at=utc_now()
        )
        runtime.storage.write_latent(model_id, record)


def invert_image(
    model_id: str,
    checkpoint: int,
    image: np.ndarray,
    label: str | None,
    steps: int,
    save_as: str | None,
    format: str,
) -> dict[str, Any]:
    """The latent whose image best matches `image` (C, S, S uint8, prepared like dataset images)."""
    runtime = current_runtime()
    result = _invert(runtime, model_id, checkpoint, image, label, steps)
    _save_latent(runtime, model_id, save_as, result.latent)
    headers = {"X-Reconstruction-MSE": f"{result.mse:.6f}", "X-Checkpoint": str(checkpoint)}
    if format == "png":
        return picture(
            png_bytes(strip(np.stack([image, result.reconstruction]), ["input", "rebuilt"])), headers
        )
    payload = Inversion(
        model_id=model_id,
        checkpoint=checkpoint,
        latent=result.latent.tolist(),
        mse=result.mse,
        reconstruction_png_base64=b64(png_bytes(result.reconstruction)),
        encoder=result.used_encoder,
        optimise_steps=result.steps,
        saved_as=save_as,
    )
    return document(payload.model_dump(), headers)


def transform(
    model_id: str,
    checkpoint: int,
    image: np.ndarray | None,
    latent: Definition | None,
    source_label: str,
    target_labels: list[str],
    identity_weight: float,
    optimise_steps: int,
    steps_between: int,
    save_as: str | None,
    format: str,
) -> dict[str, Any]:
    """Age-cGAN's re-rendering: invert the image with its source label (encoder start, then an
    optimisation keeping the reconstruction close in pixels and in discriminator features, weighted by
    `identity_weight`), keep z, and render it at every target label. `steps_between` also walks the
    label embedding between neighbouring targets, for a smooth sequence."""
    runtime = current_runtime()
    generator = runtime.generator(model_id, checkpoint)
    extra: dict[str, Any] = {}
    if image is not None:
        inverted = _invert(
            runtime, model_id, checkpoint, image, source_label, optimise_steps, feature_weight=identity_weight
        )
        z, reconstruction = inverted.latent, inverted.reconstruction
        extra = {"mse": inverted.mse, "encoder": inverted.used_encoder}
    else:
        z = latent_of(latent, generator.spec.latent_dim)
        reconstruction = generate(generator, z[None], _label_indices(runtime, model_id, [source_label]))[0]
    _save_latent(runtime, model_id, save_as, z)

    targets = _label_indices(runtime, model_id, target_labels)
    with torch.no_grad():
        keys = generator.embed(targets.to(_device(generator))).cpu()
    embeddings = interpolate_keys(keys, steps_between, "lerp") if len(keys) > 1 else keys
    rendered = generate(generator, z[None].repeat(len(embeddings), 1), embedding=embeddings)
    key_frames = rendered[:: steps_between + 1]
    headers = {"X-Checkpoint": str(checkpoint), "X-Targets": header_list(target_labels)}
    if "mse" in extra:
        headers["X-Reconstruction-MSE"] = f"{extra['mse']:.6f}"

    if format == "gif":
        return picture(gif_bytes(rendered, frame_ms=150), headers, media_type="image/gif")
    if format == "png":
        strip_png = _transform_strip(image, reconstruction, rendered, target_labels, steps_between)
        return picture(strip_png, headers)
    payload = Transformation(
        model_id=model_id,
        checkpoint=checkpoint,
        latent=z.tolist(),
        source_label=source_label,
        reconstruction_png_base64=b64(png_bytes(reconstruction)),
        images=[
            LabelledImage(label=label, png_base64=b64(png_bytes(frame)))
            for label, frame in zip(target_labels, key_frames, strict=True)
        ],
        saved_as=save_as,
        **extra,
    )
    return document(payload.model_dump(), headers)


def _transform_strip(
    image: np.ndarray | None,
    reconstruction: np.ndarray,
    rendered: np.ndarray,
    target_labels: list[str],
    steps_between: int,
) -> bytes:
    """The captioned strip: the input (when there is one), its reconstruction, then every frame, each
    target's frame captioned with its label."""
    inputs = [image] if image is not None else []
    frames = np.stack([*inputs, reconstruction, *rendered])
    walk = [caption for label in target_labels for caption in [label, *[""] * steps_between]][: len(rendered)]
    captions = [*(["input"] if image is not None else []), "rebuilt", *walk]
    return png_bytes(strip(frames, captions))
