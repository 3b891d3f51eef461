"""The generator and discriminator at 32, 64 and 128 px, with a conditional form, in two architectures.

dcgan (Radford et al. 2015, here): the generator starts from a 4×4 map (a transposed convolution of the
latent) and doubles the size with stride-2 transposed convolutions, BatchNorm and ReLU, ending in tanh.
The discriminator mirrors it with stride-2 convolutions and LeakyReLU(0.2), no BatchNorm on its first
layer. resnet (SNGAN/BigGAN-style residual blocks): see models.resnet.

Both condition the same way, so the latent toolkit and the encoder work with either: conditional models
embed the label into a vector of latent_dim numbers, which G takes either at its input (`conditioning`
"input": concatenated to z) or in every BatchNorm ("batchnorm": models.conditioning), and use a
projection discriminator (Miyato & Koyama 2018): D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, with φ the
discriminator's `features`.
"""

from __future__ import annotations

import torch
from torch import nn

from models import resnet
from models.conditioning import ConditionalSequential, batch_norm
from workers.shared.spec import NetworkSpec

WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def init_dcgan_weights(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales.

    On a spectrally normalised layer `weight` is computed from `parametrizations.weight.original` on
    every access, so writing it would change nothing: the original is what gets initialised. Networks
    apply spectral norm after this (`spectral_normalize`), so its power iteration starts from these
    weights rather than from PyTorch's default ones."""
    if isinstance(module, WEIGHTED):
        nn.init.normal_(_stored_weight(module), 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:  # conditional BatchNorm has no own affine
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _stored_weight(module: nn.Module) -> torch.Tensor:
    if nn.utils.parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def spectral_normalize(network: nn.Module) -> None:
    """Spectral norm (Miyato et al. 2018) on every convolution, linear layer and embedding of `network`."""
    for module in list(network.modules()):
        if isinstance(module, WEIGHTED):
            nn.utils.parametrizations.spectral_norm(module)


class Generator(nn.Module):
    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        self.label_embedding = nn.Embedding(spec.num_classes, spec.latent_dim) if spec.conditional else None
        at_input = spec.conditional and not spec.conditional_batch_norm
        build = resnet.ResNetGenerator if spec.architecture == "resnet" else _dcgan_generator
        # (N, input_dim, 1, 1) and, for conditional BatchNorm, the embedding (N, latent_dim) → images
        self.main = build(spec, spec.latent_dim * (2 if at_input else 1))
        self.apply(init_dcgan_weights)

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, *, embedding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z: (N, latent_dim), labels: (N,) long for conditional models → images (N, C, S, S) in [-1, 1].
        `embedding` (N, latent_dim) may stand in for the labels' embedding: a blend of two labels'
        embeddings renders a condition between them."""
        if self.spec.conditional_batch_norm:
            embedding = self._embedding(labels, embedding)
            return self.main(z[:, :, None, None], embedding.to(z.dtype))
        return self.main(self.condition(z, labels, embedding)[:, :, None, None])

    def embed(self, labels: torch.Tensor) -> torch.Tensor:
        if self.label_embedding is None:
            raise ValueError("this generator is unconditional: it has no label embedding")
        return self.label_embedding(labels)

    def condition(
        self, z: torch.Tensor, labels: torch.Tensor | None, embedding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """G's input for input conditioning: z, with the label embedding concatenated if conditional."""
        if self.label_embedding is None:
            if labels is not None or embedding is not None:
                raise ValueError("this generator is unconditional: labels must be None")
            return z
        return torch.cat([z, self._embedding(labels, embedding).to(z.dtype)], dim=1)

    def _embedding(self, labels: torch.Tensor | None, embedding: torch.Tensor | None) -> torch.Tensor:
        if embedding is not None:
            return embedding
        if labels is None:
            raise ValueError("this generator is conditional: labels are required")
        return self.embed(labels)


class Discriminator(nn.Module):
    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        build = resnet.discriminator_parts if spec.architecture == "resnet" else _dcgan_discriminator_parts
        self.features, self.head, feature_dim = build(spec)
        self.label_projection = nn.Embedding(spec.num_classes, feature_dim) if spec.conditional else None
        self.apply(init_dcgan_weights)
        if spec.spectral_norm or spec.architecture == "resnet":
            spectral_normalize(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, S, S) → logits (N,): the head ψ on the features φ(x), plus the projection
        term for conditional models."""
        features = self.features(images)
        logits = self.head(features).flatten(1).sum(dim=1)
        if self.label_projection is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: labels are required")
            projection = self.label_projection(labels).to(features.dtype)
            logits = logits + (projection * features.flatten(1)).sum(dim=1)
        return logits


def _dcgan_generator(spec: NetworkSpec, input_dim: int) -> ConditionalSequential:
    embed_dim = spec.latent_dim if spec.conditional_batch_norm else None
    widest = spec.base_channels * 2 ** (spec.upsamplings - 1)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(input_dim, widest, 4, 1, 0, bias=False),
        batch_norm(widest, embed_dim),
        nn.ReLU(True),
    ]
    width = widest
    for _ in range(spec.upsamplings - 1):
        layers += [
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
            batch_norm(width // 2, embed_dim),
            nn.ReLU(True),
        ]
        width //= 2
    layers += [nn.ConvTranspose2d(width, spec.channels, 4, 2, 1, bias=False), nn.Tanh()]
    return ConditionalSequential(*layers)


def _dcgan_discriminator_parts(spec: NetworkSpec) -> tuple[nn.Sequential, nn.Conv2d, int]:
    """Features φ(x): the 4×4 map of the stride-2 convolutions; the head ψ: a 4×4 convolution of it
    (a linear layer on the flattened map). Spectral norm, when on, replaces the BatchNorm."""
    features, width = dcgan_features(spec, batch_norm=not spec.spectral_norm)
    return features, nn.Conv2d(width, 1, 4, 1, 0, bias=False), width * 16


def dcgan_features(spec: NetworkSpec, batch_norm: bool) -> tuple[nn.Sequential, int]:
    """DCGAN's discriminator stack down to a 4×4 map, and the map's channels: stride-2 convolutions and
    LeakyReLU(0.2), with BatchNorm after every convolution but the first when `batch_norm`. The
    inversion encoder (models.encoder) is built on it too."""
    layers: list[nn.Module] = [
        nn.Conv2d(spec.channels, spec.base_channels, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    width = spec.base_channels
    for _ in range(spec.upsamplings - 1):
        layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=False))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width * 2))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        width *= 2
    return nn.Sequential(*layers), width
