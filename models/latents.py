"""Latent-space maths: interpolation, weighted sums and variations (expressions: workers.shared.expressions).

Spherical interpolation (slerp) follows the arc between two latents instead of the chord: a Gaussian
latent of dimension D lies near the sphere of radius √D, and the chord's midpoint falls inside it, where
the generator saw few latents in training (White 2016, "Sampling Generative Networks").
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch

InterpolationMethod = Literal["slerp", "lerp"]

_PARALLEL_SINE = 1e-6  # below this sin(angle), slerp's division is unstable and lerp is the same curve


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return torch.lerp(a, b, t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Along the arc from a to b; between keys of equal norm every point keeps that norm. (Nearly) parallel
    or opposite keys, where the arc is undefined or the division unstable, fall back to lerp."""
    cosine = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    angle = torch.arccos(cosine)
    sine = torch.sin(angle)
    if not torch.isfinite(sine) or sine < _PARALLEL_SINE:
        return lerp(a, b, t)
    return (torch.sin((1.0 - t) * angle) * a + torch.sin(t * angle) * b) / sine


def interpolate(keys: torch.Tensor, steps: int, method: InterpolationMethod = "slerp") -> torch.Tensor:
    """Keys (K, D), K ≥ 2 → (K + (K − 1)·steps, D): each key, then `steps` frames toward the next one.
    The keys appear unchanged (row 0, steps + 1, 2·(steps + 1), …)."""
    if keys.ndim != 2 or len(keys) < 2:
        raise ValueError(f"expected at least 2 keys as (K, D), got {tuple(keys.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be ≥ 0, got {steps}")
    between = {"slerp": slerp, "lerp": lerp}[method]
    rows = []
    for start, end in itertools.pairwise(keys):
        rows.append(start)
        rows += [between(start, end, index / (steps + 1)) for index in range(1, steps + 1)]
    rows.append(keys[-1])
    return torch.stack(rows)


def weighted_sum(terms: list[tuple[float, torch.Tensor]]) -> torch.Tensor:
    """Σ weight·latent, added left to right (so a − a + b is b exactly)."""
    if not terms:
        raise ValueError("nothing to sum")
    total = terms[0][0] * terms[0][1]
    for weight, latent in terms[1:]:
        if latent.shape != total.shape:
            raise ValueError(f"latent shapes differ: {tuple(latent.shape)} and {tuple(total.shape)}")
        total = total + weight * latent
    return total


def variations(latent: torch.Tensor, count: int, noise: float = 0.25, seed: int = 0) -> torch.Tensor:
    """(count, D): the latent plus uniform noise in [−noise, +noise] per coordinate, drawn on the CPU
    from `seed` (the DCGAN paper's ±0.25 gives visibly related images)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    offsets = (torch.rand(count, latent.numel(), generator=generator) * 2 - 1) * noise
    return latent.reshape(1, -1) + offsets.to(latent)
