import math

import pytest
import torch

from models.conditioning import ConditionalBatchNorm2d
from models.losses import discriminator_loss, generator_loss
from models.networks import Discriminator, Generator, NetworkSpec, init_dcgan_weights
from models.training import TrainConfig
from workers.shared.recipes import ARCHITECTURES, CONDITIONINGS


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("num_classes", [0, 5])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_and_discriminator_shapes(
    architecture: str, conditioning: str, image_size: int, num_classes: int, channels: int
) -> None:
    spec = NetworkSpec(
        image_size=image_size,
        channels=channels,
        latent_dim=16,
        base_channels=4,
        num_classes=num_classes,
        architecture=architecture,
        conditioning=conditioning,
    )
    generator, discriminator = Generator(spec), Discriminator(spec)
    labels = torch.tensor([0, num_classes - 1]) if num_classes else None
    images = generator(torch.randn(2, 16), labels)
    assert images.shape == (2, channels, image_size, image_size)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(images, labels).shape == (2,)


def tiny_conditional(architecture: str, conditioning: str) -> NetworkSpec:
    return NetworkSpec(
        image_size=32,
        channels=1,
        latent_dim=8,
        base_channels=4,
        num_classes=3,
        architecture=architecture,
        conditioning=conditioning,
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_conditional_networks_depend_on_the_label(architecture: str, conditioning: str) -> None:
    torch.manual_seed(0)
    spec = tiny_conditional(architecture, conditioning)
    generator, discriminator = Generator(spec).eval(), Discriminator(spec).eval()
    z = torch.randn(1, 8).repeat(2, 1)
    images = generator(z, torch.tensor([0, 2]))
    assert not torch.allclose(images[0], images[1])
    # An image of the data's scale: an untrained G's are near 0, where D's ReLUs may all be off.
    same = torch.rand(1, 1, 32, 32).mul(2).sub(1).repeat(2, 1, 1, 1)
    logits = discriminator(same, torch.tensor([0, 2]))  # the projection term tells the labels apart
    assert logits[0] != logits[1]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_a_blend_of_label_embeddings_stands_in_for_the_labels(architecture: str, conditioning: str) -> None:
    """The latent toolkit renders conditions between labels through `embedding=`: the blend's ends are
    the labels' own images, and its middle is neither."""
    generator = Generator(tiny_conditional(architecture, conditioning)).eval()
    z, labels = torch.randn(1, 8).repeat(2, 1), torch.tensor([0, 2])
    ends = generator(z, labels)
    assert torch.allclose(generator(z, embedding=generator.embed(labels)), ends)
    weights = torch.tensor([[0.0], [0.5], [1.0]])
    blends = torch.lerp(generator.embed(labels[:1]), generator.embed(labels[1:]), weights)
    between = generator(z[:1].repeat(3, 1), embedding=blends)
    assert torch.allclose(between[0], ends[0], atol=1e-6) and torch.allclose(between[2], ends[1], atol=1e-6)
    assert not torch.allclose(between[1], ends[0]) and not torch.allclose(between[1], ends[1])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_conditional_batch_norm_takes_the_label_in_every_batch_norm_and_not_at_the_input(
    architecture: str,
) -> None:
    generator = Generator(tiny_conditional(architecture, "batchnorm"))
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    conditional = [m for m in generator.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert conditional and len(norms) == len(conditional)  # each plain BatchNorm is a conditional one's
    assert not any(norm.affine for norm in norms)  # the scale and shift come from the label alone
    first = generator.main[0] if architecture == "dcgan" else generator.main.linear
    assert first.weight.shape[1 if architecture == "resnet" else 0] == 8  # z alone, no embedding
    assert all(norm.gain.in_features == 8 for norm in conditional)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_an_unconditional_generator_has_no_conditional_batch_norm(architecture: str) -> None:
    spec = NetworkSpec(latent_dim=8, base_channels=4, architecture=architecture, conditioning="batchnorm")
    generator = Generator(spec)
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in generator.modules())
    assert generator(torch.randn(2, 8)).shape == (2, 3, 32, 32)


def test_labels_are_required_exactly_for_conditional_models() -> None:
    conditional = Generator(NetworkSpec(latent_dim=8, base_channels=4, num_classes=2))
    unconditional = Generator(NetworkSpec(latent_dim=8, base_channels=4))
    with pytest.raises(ValueError, match="conditional"):
        conditional(torch.randn(1, 8))
    with pytest.raises(ValueError, match="unconditional"):
        unconditional(torch.randn(1, 8), torch.tensor([0]))


def test_image_size_and_architecture_are_checked() -> None:
    with pytest.raises(ValueError, match="image_size"):
        NetworkSpec(image_size=48)
    with pytest.raises(ValueError, match="architecture"):
        NetworkSpec(architecture="vit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conditioning must be one of"):
        NetworkSpec(conditioning="film")  # type: ignore[arg-type]


def test_a_config_saved_before_the_recipes_loads_as_it_trained() -> None:
    """Checkpoints written before architecture, conditioning, augment, R1 and d_steps existed lack their
    keys."""
    saved = TrainConfig(network=NetworkSpec(num_classes=2)).as_dict()
    for key in ("augment", "ada_target", "ada_speed_images", "r1_gamma", "r1_every", "d_steps"):
        del saved[key]
    del saved["network"]["architecture"]
    del saved["network"]["conditioning"]
    config = TrainConfig.from_dict(saved)
    assert config == TrainConfig(network=NetworkSpec(num_classes=2))
    assert (config.network.architecture, config.network.conditioning) == ("dcgan", "input")


def test_spectral_norm_discriminator_has_no_batchnorm() -> None:
    discriminator = Discriminator(NetworkSpec(base_channels=4, spectral_norm=True))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())
    assert any("parametrizations" in name for name, _ in discriminator.named_parameters())


@pytest.mark.parametrize(
    "spec",
    [
        NetworkSpec(base_channels=16, num_classes=3, spectral_norm=True),
        NetworkSpec(base_channels=16, num_classes=3, architecture="resnet"),  # always spectral norm
    ],
)
def test_spectrally_normalised_layers_get_the_dcgan_initialisation(spec: NetworkSpec) -> None:
    """The stored weights of every layer are N(0, 0.02), and spectral norm's power iteration starts from
    them: each layer's normalised weight has a largest singular value of about 1."""
    discriminator = Discriminator(spec).eval()
    layers = [m for m in discriminator.modules() if torch.nn.utils.parametrize.is_parametrized(m, "weight")]
    assert layers and all(
        isinstance(layer, torch.nn.Conv2d | torch.nn.Linear | torch.nn.Embedding) for layer in layers
    )
    for layer in layers:
        original = layer.parametrizations.weight.original
        if original.numel() >= 256:
            assert original.std().item() == pytest.approx(0.02, rel=0.2)
        sigma = torch.linalg.matrix_norm(layer.weight.flatten(1).detach(), ord=2).item()
        assert sigma == pytest.approx(1.0, rel=0.15), layer


def test_dcgan_initialisation_reaches_an_already_normalised_layer() -> None:
    layer = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Conv2d(64, 64, 3))
    init_dcgan_weights(layer)
    assert layer.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.05)


def test_non_saturating_loss_is_bce() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected_d = bce(real, torch.ones(2)) + bce(fake, torch.zeros(2))
    assert torch.allclose(discriminator_loss("non_saturating", real, fake), expected_d)
    assert torch.allclose(generator_loss("non_saturating", fake), bce(fake, torch.ones(2)))


def test_label_smoothing_makes_the_real_target_one_minus_it() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected_d = bce(real, torch.full((2,), 0.9)) + bce(fake, torch.zeros(2))
    assert torch.allclose(discriminator_loss("non_saturating", real, fake, label_smoothing=0.1), expected_d)
    # D's loss is lowest where it believes real images real with probability 0.9, not at certainty:
    # the gradient on a real logit vanishes at logit(0.9) and pushes a more certain D back down.
    logit = torch.tensor([math.log(9.0), 6.0], requires_grad=True)
    discriminator_loss("non_saturating", logit, torch.zeros(2), label_smoothing=0.1).backward()
    assert logit.grad[0].item() == pytest.approx(0.0, abs=1e-6) and logit.grad[1].item() > 0


def test_hinge_loss_has_no_targets_to_smooth() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    smoothed = discriminator_loss("hinge", real, fake, label_smoothing=0.3)
    assert smoothed == discriminator_loss("hinge", real, fake)


def test_hinge_loss() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5] → 0.25; relu(1 + fake) = [0, 1] → 0.5
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx(0.75)
    assert generator_loss("hinge", fake).item() == pytest.approx(1.0)


def test_unknown_loss_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown loss"):
        generator_loss("wasserstein", torch.zeros(1))  # type: ignore[arg-type]
