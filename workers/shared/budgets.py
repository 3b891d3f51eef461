"""What one request may cost, checked by the API before anything is queued, and the size of the forward
passes that workers render in. Torch-free: the API imports it. docs/api.md lists these caps.

Work that multiplies with a list or a count is capped on the product, not only field by field: two
key latents with 64 steps between are fine, sixteen are not.
"""

from __future__ import annotations

MAX_IMAGES = 256
"""Images one request renders: generate's `n`; an interpolation's frames, keys + (keys − 1) × steps;
a transform's frames, targets + (targets − 1) × steps_between; arithmetic's result and variations."""

MAX_OPTIMISATION_PIXEL_STEPS = 2000 * 64 * 64
"""Optimisation steps × images optimised × their pixels (image_size²), per request (invert and transform
optimise one image): 2,000 steps at 32 and 64 px, 500 at 128 px. Such a job holds the sampling worker's
job thread (generate requests have their own) for at most this much work."""

MAX_LATENT_VALUE = 1000.0
"""Largest |coordinate| of a latent vector given in a request. Latents are drawn from N(0, 1); with this
and MAX_WEIGHT, no weighted sum or norm the workers compute leaves float32's range."""

MAX_WEIGHT = 1000.0
"""Largest |weight| of an arithmetic term, in `terms` or in an `expression`."""

RENDER_PASS_BYTES = 128 * 2**20
"""Memory one forward pass of G may take (workers.shared.footprint's bound): larger renders go in several
passes, so a worker's peak does not grow with the request."""

MAX_RENDER_PASS_IMAGES = 64


def frames(keys: int, steps_between: int) -> int:
    """Frames of a walk through `keys` key frames with `steps_between` frames between neighbours."""
    return keys + max(keys - 1, 0) * steps_between


def check_frames(keys: int, steps_between: int, keys_field: str, steps_field: str) -> int:
    """The frame count, or ValueError naming both fields and the cap."""
    count = frames(keys, steps_between)
    if count > MAX_IMAGES:
        raise ValueError(
            f"{keys_field} × {steps_field} is over budget: {keys} {keys_field} with {steps_between} "
            f"{steps_field} make {count} frames; at most {MAX_IMAGES} per request"
        )
    return count


def check_optimisation(steps: int, image_size: int, images: int = 1) -> None:
    """ValueError naming the cap when `steps` of optimisation on `images` images of this size are too
    much work for one request."""
    pixels = images * image_size**2
    if steps * pixels > MAX_OPTIMISATION_PIXEL_STEPS:
        raise ValueError(
            f"optimisation steps × image pixels is over budget: {steps} steps on {images} "
            f"{image_size}×{image_size} image(s); at most {MAX_OPTIMISATION_PIXEL_STEPS // pixels} steps "
            f"at this size ({MAX_OPTIMISATION_PIXEL_STEPS:,} step-pixels per request)"
        )


def render_chunk(bytes_per_image: int) -> int:
    """Images per forward pass for a generator that needs `bytes_per_image` per image."""
    return max(1, min(MAX_RENDER_PASS_IMAGES, RENDER_PASS_BYTES // max(1, bytes_per_image)))
