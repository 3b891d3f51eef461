from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.encoder import Encoder, load_encoder, save_encoder, train_encoder
from models.inversion import invert
from models.networks import Discriminator, Generator, NetworkSpec
from models.sampling import latent_for_seed, latents_for_seeds
from models.training import TrainConfig, Trainer

SPEC = NetworkSpec(image_size=32, channels=1, latent_dim=16, base_channels=8, num_classes=3)


def shapes(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 0: a horizontal bar, 1: a vertical bar, 2: a square; each at a random place."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, 32, 32), np.uint8)
    labels = rng.integers(0, 3, count)
    for image, label in zip(images, labels, strict=True):
        row, column = rng.integers(4, 24, 2)
        if label == 0:
            image[0, row : row + 4, 2:30] = 255
        elif label == 1:
            image[0, 2:30, column : column + 4] = 255
        else:
            image[0, row : row + 8, column : column + 8] = 255
    return images, labels


@pytest.fixture(scope="module")
def trained() -> Trainer:
    trainer = Trainer(TrainConfig(network=SPEC, batch_size=32, precision="fp32"), *shapes(512))
    for _ in range(300):
        trainer.train_step()
    return trainer


@pytest.fixture(scope="module")
def encoder(trained: Trainer) -> Encoder:
    return train_encoder(trained.generator_ema, steps=300, batch_size=32)


def generated_targets(generator: Generator, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents (seeds 100, 101, …), labels and their images."""
    latents = latents_for_seeds(range(100, 100 + count), SPEC.latent_dim)
    labels = torch.arange(count) % SPEC.num_classes
    with torch.no_grad():
        return latents, labels, generator.eval()(latents, labels)


def latent_mse(encoder: Encoder, generator: Generator) -> float:
    latents, _, images = generated_targets(generator, 64)
    with torch.no_grad():
        return F.mse_loss(encoder.eval()(images), latents).item()


def test_encoder_training_reduces_its_latent_error(trained: Trainer, encoder: Encoder) -> None:
    generator = trained.generator_ema
    losses: list[float] = []
    short = train_encoder(generator, steps=20, batch_size=32, on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 20 and not short.training
    untrained = Encoder(SPEC)
    assert latent_mse(encoder, generator) < 0.3 * latent_mse(untrained, generator)
    assert latent_mse(encoder, generator) < latent_mse(short, generator)


def test_train_encoder_is_seeded_and_leaves_the_generator_alone(trained: Trainer) -> None:
    generator = trained.generator  # in training mode, with gradients on
    generator.zero_grad(set_to_none=True)
    first = train_encoder(generator, steps=3, batch_size=8, seed=5)
    second = train_encoder(generator, steps=3, batch_size=8, seed=5)
    other = train_encoder(generator, steps=3, batch_size=8, seed=6)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.head.weight, other.head.weight)
    assert generator.training and all(p.requires_grad and p.grad is None for p in generator.parameters())


def test_saved_encoder_loads_with_the_same_outputs(tmp_path: Path, encoder: Encoder) -> None:
    path = tmp_path / "encoder.pt"
    save_encoder(path, encoder)
    loaded = load_encoder(path)
    images = torch.rand(4, 1, 32, 32) * 2 - 1
    assert loaded.spec == SPEC and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(images), encoder(images))


def test_inverting_a_generated_image_recovers_it(trained: Trainer) -> None:
    generator = trained.generator_ema
    _, labels, images = generated_targets(generator, 4)
    for image, label in zip(images, labels.tolist(), strict=True):
        result = invert(generator, image, label, discriminator=trained.discriminator, steps=100, seed=1)
        with torch.no_grad():
            start = generator(latent_for_seed(1, SPEC.latent_dim)[None], torch.tensor([label]))
        assert result.mse < F.mse_loss(start[0], image).item() / 3
        assert result.reconstruction.shape == (1, 32, 32) and result.reconstruction.dtype == np.uint8
        assert result.latent.shape == (SPEC.latent_dim,) and result.steps == 100


def test_encoder_start_beats_a_random_start(trained: Trainer, encoder: Encoder) -> None:
    generator, discriminator = trained.generator_ema, trained.discriminator
    _, labels, images = generated_targets(generator, 6)
    with_encoder, from_random = [], []
    for image, label in zip(images, labels.tolist(), strict=True):
        common = {"discriminator": discriminator, "steps": 30}
        with_encoder.append(invert(generator, image, label, encoder=encoder, **common).mse)
        from_random.append(invert(generator, image, label, **common).mse)
    assert np.mean(with_encoder) <= 0.5 * np.mean(from_random)


def test_zero_steps_returns_the_start(trained: Trainer, encoder: Encoder) -> None:
    generator = trained.generator_ema
    _, _, images = generated_targets(generator, 1)
    with torch.no_grad():
        guess = encoder(images)[0]
    assert torch.equal(invert(generator, images[0], 0, encoder=encoder, steps=0).latent, guess)
    start = latent_for_seed(9, SPEC.latent_dim)
    result = invert(generator, images[0], 0, encoder=encoder, start=start, steps=0)
    assert torch.equal(result.latent, start) and result.steps == 0


def test_inversion_is_deterministic_and_leaves_the_networks_alone(trained: Trainer, encoder: Encoder) -> None:
    generator, discriminator = trained.generator, trained.discriminator  # training mode, gradients on
    generator.zero_grad(set_to_none=True)
    discriminator.zero_grad(set_to_none=True)
    before = [p.clone() for p in [*generator.parameters(), *discriminator.parameters()]]
    _, _, images = generated_targets(trained.generator_ema, 1)
    runs = [
        invert(generator, images[0], 2, encoder=encoder, discriminator=discriminator, steps=10)
        for _ in range(2)
    ]
    assert torch.equal(runs[0].latent, runs[1].latent) and runs[0].mse == runs[1].mse
    assert np.array_equal(runs[0].reconstruction, runs[1].reconstruction)
    for network in (generator, discriminator):
        assert network.training and all(p.requires_grad and p.grad is None for p in network.parameters())
    after = [*generator.parameters(), *discriminator.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert not encoder.training


@pytest.mark.parametrize(
    ("architecture", "num_classes", "gain"),
    # An untrained resnet's error stalls at about a third of the start's: a local minimum of a random
    # network, but the path through its generator and its discriminator's features works. With 3
    # classes, G takes the label in every BatchNorm (conditioning "batchnorm").
    [("dcgan", 0, 3), ("resnet", 0, 2), ("dcgan", 3, 3), ("resnet", 3, 2)],
)
def test_inversion_of_an_untrained_generator_recovers_its_image(
    architecture: str, num_classes: int, gain: float
) -> None:
    spec = NetworkSpec(
        image_size=32,
        channels=1,
        latent_dim=16,
        base_channels=8,
        num_classes=num_classes,
        architecture=architecture,
        conditioning="batchnorm",
    )
    torch.manual_seed(0)
    generator, discriminator = Generator(spec), Discriminator(spec)
    label = 1 if num_classes else None
    labels = torch.full((256,), 1) if num_classes else None
    # Untrained, but with BatchNorm statistics of real activations: with the initial running variance
    # of 1 the eval-mode output would be nearly constant.
    for module in generator.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: one batch sets the statistics
    with torch.no_grad():
        generator.train()(torch.randn(256, 16), labels)
        target = generator.eval()(latent_for_seed(3, 16)[None], labels[:1] if num_classes else None)[0]
    start = invert(generator, target, label, steps=0, seed=4)
    result = invert(generator, target, label, discriminator=discriminator, steps=50, seed=4)
    assert result.mse < start.mse / gain


def test_inversion_checks_the_target_and_label(trained: Trainer) -> None:
    generator = trained.generator_ema
    with pytest.raises(ValueError, match="shape"):
        invert(generator, torch.zeros(3, 32, 32), 0)
    with pytest.raises(ValueError, match="labels are required"):
        invert(generator, torch.zeros(1, 32, 32), steps=1)
