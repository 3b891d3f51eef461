"""Latents from seeds and images from generators.

A seed's latent is drawn on the CPU with its own generator, so seed 7 is the same vector on every
machine and device. Sampling runs the generator in eval mode (BatchNorm uses its running statistics),
so each image depends on its own latent alone: a seed gives the same image alone or inside a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.devices import autocast_dtype
from models.networks import Generator
from workers.shared.budgets import render_chunk
from workers.shared.footprint import render_bytes_per_image


def latent_for_seed(seed: int, latent_dim: int) -> torch.Tensor:
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(latent_dim, generator=generator)


def latents_for_seeds(seeds: Sequence[int], latent_dim: int) -> torch.Tensor:
    """(len(seeds), latent_dim) on the CPU."""
    return torch.stack([latent_for_seed(seed, latent_dim) for seed in seeds])


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output in [-1, 1] → (N, C, H, W) uint8."""
    scaled = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    return scaled.round().to(torch.uint8).cpu().numpy()


@torch.inference_mode()
def generate(
    generator: Generator,
    latents: torch.Tensor,
    labels: torch.Tensor | None = None,
    truncation: float = 1.0,
    embedding: torch.Tensor | None = None,
    precision: str = "auto",
) -> np.ndarray:
    """Render latents (N, latent_dim) → (N, C, H, W) uint8.

    `truncation` ψ scales each latent toward the mean of the prior (zero): ψ < 1 trades variety for
    fidelity, ψ = 1 leaves the latent as drawn. `embedding` replaces the labels' embedding (see
    Generator.forward). `precision` "auto" renders in bf16 where the device runs it natively (about 3×
    faster on such a CPU); each image still depends on its own latent only.

    The latents go through G in passes of workers.shared.budgets.render_chunk images, each pass turned into
    uint8 before the next: the memory a render takes does not grow with the number of latents.
    """
    device = next(generator.parameters()).device
    dtype = autocast_dtype(precision, device)
    generator.eval()
    chunk = render_chunk(render_bytes_per_image(generator.spec))
    passes = []
    for start in range(0, len(latents), chunk):
        part = slice(start, start + chunk)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            images = generator(
                latents[part].to(device, torch.float32) * truncation,
                _part_on(labels, part, device),
                embedding=_part_on(embedding, part, device),
            )
        passes.append(to_uint8(images))
    return np.concatenate(passes)


def _part_on(values: torch.Tensor | None, part: slice, device: torch.device) -> torch.Tensor | None:
    return values[part].to(device) if values is not None else None
