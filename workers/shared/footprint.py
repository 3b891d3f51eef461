"""What a pair of networks costs in memory, from their shape alone (no torch): the API refuses a training
spec that no worker can hold before it is queued, and sampling sizes its forward passes with it.

Parameters are counted exactly, layer by layer as models.networks and models.resnet build them
(tests/unit/test_footprint.py holds the counts to the built networks). Training holds, in float32:
G's weights, gradients, Adam's two moments and the EMA copy (5 numbers per parameter); D's weights,
gradients and moments (4); the data set as uint8 at the model's size; and one step's activations, kept
for the backward pass: G's on a batch, D's on a real and a fake batch. Activations are estimated from
the feature-map sizes: dcgan keeps about two tensors per layer (convolution and BatchNorm outputs; its
ReLUs run in place), resnet about six per block (two convolutions, two BatchNorms, the upsampled input
and the shortcut). The process itself (Python, torch, CUDA's context) comes on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from workers.shared.spec import NetworkSpec, widths

FLOAT_BYTES = 4
GENERATOR_COPIES = 5  # weights, gradients, Adam's two moments, the EMA generator
DISCRIMINATOR_COPIES = 4  # weights, gradients, Adam's two moments
KEPT_PER_MAP = {"dcgan": 2, "resnet": 6}
PASSES_PER_STEP = 3  # G on a batch, D on the real batch and on the fake one
GiB = 2**30


def _conv(inputs: int, outputs: int, kernel: int, bias: bool) -> int:
    return inputs * outputs * kernel * kernel + (outputs if bias else 0)


def _batch_norm(channels: int) -> int:
    return 2 * channels  # scale and shift; the running statistics are buffers


def generator_parameters(spec: NetworkSpec) -> int:
    """Parameters of models.networks.Generator for `spec`."""
    embedding = spec.num_classes * spec.latent_dim
    at_input = spec.conditional and not spec.conditional_batch_norm
    inputs = spec.latent_dim * (2 if at_input else 1)
    stages = widths(spec)

    def norm(channels: int) -> int:
        if spec.conditional_batch_norm:  # scale and shift: two linear maps of the label embedding
            return 2 * (spec.latent_dim + 1) * channels
        return _batch_norm(channels)

    if spec.architecture == "resnet":
        body = inputs * stages[0] * 16 + stages[0] * 16  # the linear map to the 4×4 map
        for a, b in pairwise(stages):  # UpBlock: BN, conv3 (no bias), BN, conv3, shortcut conv1
            body += norm(a) + _conv(a, b, 3, False) + norm(b) + _conv(b, b, 3, True)
            body += _conv(a, b, 1, True)
        body += norm(stages[-1]) + _conv(stages[-1], spec.channels, 3, True)
        return embedding + body
    layers = stages[: spec.upsamplings]  # 4×4 … image_size/2
    body = _conv(inputs, layers[0], 4, False) + norm(layers[0])
    for a, b in pairwise(layers):
        body += _conv(a, b, 4, False) + norm(b)
    return embedding + body + _conv(layers[-1], spec.channels, 4, False)


def discriminator_parameters(spec: NetworkSpec) -> int:
    """Parameters of models.networks.Discriminator for `spec` (spectral norm adds buffers only)."""
    stages = widths(spec)
    if spec.architecture == "resnet":
        channels = [spec.channels, *stages[-1:0:-1]]  # DownBlocks from image_size to 8×8
        body = sum(
            _conv(a, b, 3, True) + _conv(b, b, 3, True) + _conv(a, b, 1, True) for a, b in pairwise(channels)
        )
        features = channels[-1]
        head = features + 1  # a linear layer
    else:
        channels = [spec.channels, *reversed(stages[: spec.upsamplings])]  # image → 4×4
        body = _conv(channels[0], channels[1], 4, False)
        for a, b in pairwise(channels[1:]):
            body += _conv(a, b, 4, False) + (0 if spec.spectral_norm else _batch_norm(b))
        features = channels[-1] * 16
        head = channels[-1] * 16  # a 4×4 convolution to one logit
    return body + head + spec.num_classes * features


def feature_map_floats(spec: NetworkSpec) -> int:
    """Numbers in one image's feature maps, one per layer (dcgan) or stage (resnet), image included.
    D's maps are G's in reverse, near enough, so this serves for both."""
    levels = spec.upsamplings + (1 if spec.architecture == "resnet" else 0)
    maps = sum(width * (4 << level) ** 2 for level, width in enumerate(widths(spec)[:levels]))
    return maps + spec.channels * spec.image_size**2


def render_bytes_per_image(spec: NetworkSpec) -> int:
    """A bound on the memory G's forward pass takes per image (without gradients it keeps less)."""
    return FLOAT_BYTES * KEPT_PER_MAP[spec.architecture] * feature_map_floats(spec)


@dataclass(frozen=True)
class TrainingFootprint:
    """Bytes a training job holds at its peak, by part."""

    networks: int  # weights, gradients, optimiser moments, EMA
    activations: int  # one step's, kept for backward
    data: int  # the training set on the device, uint8

    @property
    def total(self) -> int:
        return self.networks + self.activations + self.data

    def describe(self) -> str:
        return (
            f"about {self.total / GiB:.1f} GiB (networks with gradients, Adam state and EMA "
            f"{self.networks / GiB:.1f} GiB, activations {self.activations / GiB:.1f} GiB, "
            f"data {self.data / GiB:.1f} GiB)"
        )


def training_footprint(spec: NetworkSpec, batch_size: int, images: int) -> TrainingFootprint:
    """The estimate for training `spec` on `images` images with batches of `batch_size`."""
    numbers = GENERATOR_COPIES * generator_parameters(spec)
    numbers += DISCRIMINATOR_COPIES * discriminator_parameters(spec)
    kept = KEPT_PER_MAP[spec.architecture] * feature_map_floats(spec)
    return TrainingFootprint(
        networks=FLOAT_BYTES * numbers,
        activations=FLOAT_BYTES * PASSES_PER_STEP * batch_size * kept,
        data=images * spec.channels * spec.image_size**2,
    )


class DoesNotFit(ValueError):
    """A training job needs more memory than where it would run has."""


def check_fits(footprint: TrainingFootprint, limit: int | None, where: str) -> None:
    """DoesNotFit, with the estimate, when `footprint` is over `limit` bytes (None: unknown, so it fits).
    `where` ends the sentence: "a worker has (GANFORGE_WORKER_MEMORY_MB)", "cuda:0 has"."""
    if limit is not None and footprint.total > limit:
        raise DoesNotFit(
            f"training this spec needs {footprint.describe()}, more than the {limit / GiB:.1f} GiB {where}"
        )
