"""Differentiable augmentation of D's inputs: DiffAugment (Zhao et al. 2020) and its adaptive form (ADA,
Karras et al. 2020).

D sees only augmented images, real and fake alike, in its own update and in G's, so it cannot learn
the augmentations as a sign of "real", and G's gradients flow back through them (every operation here
is differentiable in the image). The operations are DiffAugment's: `translation` (shift by up to 1/8 of
the size, zero fill), `cutout` (a zeroed square of half the size), `color` (brightness, saturation and
contrast). They are cheap element-wise and indexing work, which is why "ada" uses them instead of ADA's
own pipeline of geometric warps: under "ada" all three apply, each of its five transforms (translation,
cutout, brightness, saturation, contrast) to an image with probability p, and p follows D's overfitting
(see `Augment.observe`).

Randomness: every call draws a (N, PARAMETERS) table of uniforms in one `torch.rand` from the CPU
generator the Augment owns, and image i's transform is a function of row i alone. So an image's
transform depends on the generator's state and its position in the batch, never on the other images:
from the same state, image 0 of a batch of 1 and image 0 of a batch of 64 get the same one. The
generator's state, p and the overfitting statistic are in `state_dict`, so a resumed run augments
exactly as an unbroken one. Over several devices each rank draws the global batch's table and keeps its
rows, and the statistic sums the global batch (models.distributed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.distributed import Shard
from workers.shared.recipes import AUGMENT_POLICIES

OPERATIONS = ("color", "translation", "cutout")  # the order they apply in, as DiffAugment does
ADA_INTERVAL = 4  # D updates between adjustments of p

# Columns of the parameter table: one gate per transform (applied when gate < p), then the transforms'
# own uniforms.
GATE_TRANSLATION, GATE_CUTOUT, GATE_BRIGHTNESS, GATE_SATURATION, GATE_CONTRAST = range(5)
SHIFT = slice(5, 7)  # translation along y, x
CENTRE = slice(7, 9)  # cutout centre along y, x
BRIGHTNESS, SATURATION, CONTRAST = 9, 10, 11
PARAMETERS = 12


def policy_operations(policy: str) -> tuple[str, ...]:
    """The operations of a policy, in the order they apply. ValueError for an unknown policy."""
    if policy not in AUGMENT_POLICIES:
        allowed = ", ".join(repr(name) for name in AUGMENT_POLICIES)
        raise ValueError(f"augment must be one of {allowed}; got {policy!r}")
    if policy == "ada":
        return OPERATIONS
    named = set(policy.split(",")) - {"none"}
    return tuple(operation for operation in OPERATIONS if operation in named)


def augment(
    images: torch.Tensor, parameters: torch.Tensor, operations: tuple[str, ...], p: float = 1.0
) -> torch.Tensor:
    """Images (N, C, H, W) transformed by `operations`, image i as row i of `parameters` (N, PARAMETERS)
    of uniforms in [0, 1) says; each transform applies to an image when its gate column is below `p`.
    The parameters stay fp32 whatever the images' dtype: a bf16 0.999 would round to 1."""
    parameters = parameters.to(images.device, torch.float32)
    gates = parameters[:, :5] < p
    for operation in operations:
        if operation == "color":
            images = color(images, parameters, gates)
        elif operation == "translation":
            images = translate(images, parameters[:, SHIFT], gates[:, GATE_TRANSLATION])
        else:
            images = cutout(images, parameters[:, CENTRE], gates[:, GATE_CUTOUT])
    return images


def color(images: torch.Tensor, parameters: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Brightness: + U(−0.5, 0.5); saturation: the distance from the pixel's channel mean × U(0, 2);
    contrast: the distance from the image's mean × U(0.5, 1.5) (on [-1, 1] pixels, as DiffAugment)."""

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.to(images.dtype)[:, None, None, None]

    shift = torch.where(gates[:, GATE_BRIGHTNESS], parameters[:, BRIGHTNESS] - 0.5, 0.0)
    images = images + per_image(shift)
    scale = torch.where(gates[:, GATE_SATURATION], parameters[:, SATURATION] * 2, 1.0)
    mean = images.mean(dim=1, keepdim=True)
    images = (images - mean) * per_image(scale) + mean
    scale = torch.where(gates[:, GATE_CONTRAST], parameters[:, CONTRAST] + 0.5, 1.0)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * per_image(scale) + mean


def translate(images: torch.Tensor, uniforms: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels, up to 1/8 of its size each way; pixels shifted in are 0."""
    n, _, height, width = images.shape
    reach = torch.tensor([int(height * 0.125 + 0.5), int(width * 0.125 + 0.5)], device=images.device)
    shifts = (uniforms * (2 * reach + 1)).floor().long() - reach  # uniform over −reach … reach
    shifts = shifts * gates[:, None]
    # Gather from a zero-padded copy: a source index outside the image lands on the padding.
    padded = F.pad(images, (1, 1, 1, 1))
    rows = (torch.arange(height, device=images.device) + shifts[:, :1] + 1).clamp(0, height + 1)
    columns = (torch.arange(width, device=images.device) + shifts[:, 1:] + 1).clamp(0, width + 1)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)


def cutout(images: torch.Tensor, uniforms: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Zero a square of half the image's size (clipped at the border) around a uniform centre."""
    _, _, height, width = images.shape
    size = torch.tensor([int(height * 0.5 + 0.5), int(width * 0.5 + 0.5)], device=images.device)
    span = torch.tensor([height, width], device=images.device) + 1 - size % 2
    start = (uniforms * span).floor().long() - size // 2  # (N, 2): the square's first row, column
    rows = torch.arange(height, device=images.device) - start[:, :1]  # (N, H): position within the square
    columns = torch.arange(width, device=images.device) - start[:, 1:]
    inside_rows = (rows >= 0) & (rows < size[0])
    inside_columns = (columns >= 0) & (columns < size[1])
    cut = inside_rows[:, :, None] & inside_columns[:, None, :] & gates[:, None, None]
    return images * (~cut)[:, None].to(images.dtype)


class Augment:
    """The augmentation of one training run: its policy, its random stream, and under "ada" the
    probability p and the statistic that steers it.

    ADA's heuristic r_t = E[sign(D(x_real))] over the last ADA_INTERVAL D updates measures how sure D
    is of the (augmented) reals: 0 for a D that cannot tell, 1 for one that has memorised them. After
    each interval p ← clamp(p + sign(r_t − target) · images / speed_images, 0, 1), with `images` the
    real images of the interval: p can cross 0 → 1 in `speed_images` images. The paper moves that far in
    500 k; ganforge's runs are short (2,000 steps × 64 = 128 k images), so TrainConfig's default is 20 k.
    Fixed policies apply every transform (p = 1) and "none" none (p = 0).
    """

    def __init__(
        self,
        policy: str,
        seed: int,
        target: float = 0.6,
        speed_images: int = 20_000,
        shard: Shard | None = None,
    ):
        self.shard = shard or Shard()
        self.operations = policy_operations(policy)
        self.adaptive = policy == "ada"
        self.target, self.speed_images = target, speed_images
        self.p = 0.0 if self.adaptive or not self.operations else 1.0
        self.generator = torch.Generator(device="cpu").manual_seed(_stream_seed(seed))
        self._sign_sum: torch.Tensor | float = 0.0
        self._observed_images = 0
        self._observed_updates = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The images augmented; at p = 0 (no policy, or ADA's start) the images themselves, no draw."""
        if self.p == 0:
            return images
        rows = len(images) * self.shard.world_size  # the global batch's table; this rank's rows of it
        parameters = torch.rand(rows, PARAMETERS, generator=self.generator)[self.shard.rows(rows)]
        return augment(images, parameters, self.operations, self.p)

    def observe(self, real_logits: torch.Tensor) -> None:
        """Record one D update's logits on the (augmented) reals; under "ada" adjust p every
        ADA_INTERVAL updates. The sum stays on the device between adjustments: no sync per step."""
        if not self.adaptive:
            return
        self._sign_sum = self._sign_sum + self.shard.sum(real_logits.detach().float().sign().sum())
        self._observed_images += len(real_logits) * self.shard.world_size
        self._observed_updates += 1
        if self._observed_updates == ADA_INTERVAL:
            overfitting = float(self._sign_sum) / self._observed_images  # r_t
            step = np.sign(overfitting - self.target) * self._observed_images / self.speed_images
            self.p = float(np.clip(self.p + step, 0.0, 1.0))
            self._sign_sum, self._observed_images, self._observed_updates = 0.0, 0, 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "p": self.p,
            "sign_sum": float(self._sign_sum),
            "observed_images": self._observed_images,
            "observed_updates": self._observed_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.p = state["p"]
        self._sign_sum = state["sign_sum"]
        self._observed_images = state["observed_images"]
        self._observed_updates = state["observed_updates"]


def _stream_seed(seed: int) -> int:
    """A seed for the augmentation's stream, independent of the run's main stream of the same seed."""
    return int(np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(1, np.uint64)[0] >> 1)
