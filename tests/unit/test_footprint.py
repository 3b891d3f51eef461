"""workers.shared.footprint's arithmetic against the networks torch actually builds, and generation in bounded
passes (models.sampling)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import models.sampling
from models.networks import Discriminator, Generator
from models.sampling import generate, latents_for_seeds
from workers.shared.budgets import MAX_RENDER_PASS_IMAGES, RENDER_PASS_BYTES, render_chunk
from workers.shared.footprint import (
    discriminator_parameters,
    generator_parameters,
    render_bytes_per_image,
    training_footprint,
)
from workers.shared.recipes import ARCHITECTURES, CONDITIONINGS
from workers.shared.spec import IMAGE_SIZES, NetworkSpec


def parameters(network: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


@pytest.mark.parametrize(
    ("image_size", "architecture", "conditioning", "num_classes", "spectral_norm", "channels"),
    list(itertools.product(IMAGE_SIZES, ARCHITECTURES, CONDITIONINGS, (0, 3), (False, True), (1, 3))),
)
def test_parameter_counts_match_the_built_networks(
    image_size: int,
    architecture: str,
    conditioning: str,
    num_classes: int,
    spectral_norm: bool,
    channels: int,
) -> None:
    spec = NetworkSpec(
        image_size=image_size,
        channels=channels,
        latent_dim=10,
        base_channels=4,
        num_classes=num_classes,
        spectral_norm=spectral_norm,
        architecture=architecture,
        conditioning=conditioning,
    )
    assert generator_parameters(spec) == parameters(Generator(spec))
    assert discriminator_parameters(spec) == parameters(Discriminator(spec))


@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_the_default_recipe_counts_match_too(conditioning: str) -> None:
    spec = NetworkSpec(num_classes=2, conditioning=conditioning)  # 32 px, base 64: widths not tiny
    assert generator_parameters(spec) == parameters(Generator(spec))
    assert discriminator_parameters(spec) == parameters(Discriminator(spec))


def test_training_estimate_adds_networks_optimiser_activations_and_data() -> None:
    spec = NetworkSpec(image_size=64, channels=3, base_channels=32)
    small, large = training_footprint(spec, 8, 1000), training_footprint(spec, 16, 1000)
    assert small.networks == 4 * (5 * generator_parameters(spec) + 4 * discriminator_parameters(spec))
    assert large.activations == 2 * small.activations  # linear in the batch
    assert small.data == 1000 * 3 * 64 * 64
    assert small.total == small.networks + small.activations + small.data
    assert "GiB" in small.describe()


def test_render_passes_shrink_as_networks_grow() -> None:
    assert render_chunk(render_bytes_per_image(NetworkSpec(base_channels=8))) == MAX_RENDER_PASS_IMAGES
    huge = NetworkSpec(image_size=128, base_channels=512, architecture="resnet")
    assert render_bytes_per_image(huge) > RENDER_PASS_BYTES
    assert render_chunk(render_bytes_per_image(huge)) == 1


def test_generate_renders_in_passes_with_the_same_images(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    spec = NetworkSpec(image_size=32, channels=1, latent_dim=8, base_channels=4, num_classes=2)
    generator = Generator(spec)
    latents = latents_for_seeds(range(7), 8)
    labels = torch.tensor([0, 1] * 3 + [0])
    whole = generate(generator, latents, labels, truncation=0.7)

    batches: list[int] = []
    generator.register_forward_hook(lambda module, inputs, output: batches.append(len(output)))
    monkeypatch.setattr(models.sampling, "render_chunk", lambda bytes_per_image: 3)
    assert np.array_equal(generate(generator, latents, labels, truncation=0.7), whole)
    assert batches == [3, 3, 1]
