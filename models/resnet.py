"""Residual generator and discriminator bodies (SNGAN, Miyato et al. 2018; the CIFAR ResNet of
Gulrajani et al. 2017; BigGAN's block layout, Brock et al. 2019) at 32, 64 and 128 px.

G: a linear map of the (conditioned) latent to a 4×4 map, one up-block per doubling
(BN-ReLU-upsample-conv3-BN-ReLU-conv3, shortcut upsample-conv1), then BN-ReLU-conv3-tanh; with
conditional BatchNorm (models.conditioning) every BN takes the label embedding.
D: down-blocks (ReLU-conv3-ReLU-conv3-avgpool; the first, "optimised" block has no leading ReLU and
pools its input for the shortcut), then ReLU and a sum over positions: φ(x), a vector; the head ψ is a
linear layer. models.networks wraps both with the conditioning, DCGAN initialisation and, in D, spectral
norm on every layer.

Widths follow DCGAN's: the map at resolution R is base·2^(u−1)·4/R channels wide (u: the doublings,
3 at 32 px), in G as in D, so 4×4 is the widest and the full-resolution stage, which DCGAN does not
have, is base/2 wide. At 32 px and base 64 a training step does 3× DCGAN's arithmetic (3×3 convolutions
at every resolution instead of one 4×4 stride-2 one); base 32 does 0.76× the arithmetic
(`python -m bench.train_speed --architecture resnet` prints the step time beside DCGAN's).

A 1×1 convolution commutes with nearest upsampling and with average pooling, so every shortcut runs
its convolution at the lower resolution: the same function, a quarter of the work.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from models.conditioning import ConditionalSequential, Conditioned, batch_norm
from workers.shared.spec import widths

if TYPE_CHECKING:
    from workers.shared.spec import NetworkSpec


class UpBlock(Conditioned):
    """Its BatchNorms are conditional on an embedding of `embed_dim` numbers, or plain when None."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int | None):
        super().__init__()
        self.residual = ConditionalSequential(
            batch_norm(in_channels, embed_dim),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
            batch_norm(out_channels, embed_dim),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        return self.residual(x, embedding) + F.interpolate(self.shortcut(x), scale_factor=2.0)


class DownBlock(nn.Module):
    """ReLU-conv3-ReLU-conv3-avgpool, shortcut avgpool-conv1. The first block of D (`first`) sees the
    image itself: no ReLU before its first convolution."""

    def __init__(self, in_channels: int, out_channels: int, first: bool = False):
        super().__init__()
        self.residual = nn.Sequential(
            *([] if first else [nn.ReLU()]),
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.AvgPool2d(2),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(F.avg_pool2d(x, 2))


class SumPool(nn.Module):
    """ReLU, then the sum over positions: (N, C, H, W) → (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).sum(dim=(2, 3))


class ResNetGenerator(nn.Module):
    def __init__(self, spec: NetworkSpec, input_dim: int):
        super().__init__()
        channels = widths(spec)
        embed_dim = spec.latent_dim if spec.conditional_batch_norm else None
        self.linear = nn.Linear(input_dim, channels[0] * 16)
        self.blocks = ConditionalSequential(*(UpBlock(a, b, embed_dim) for a, b in pairwise(channels)))
        self.output = ConditionalSequential(
            batch_norm(channels[-1], embed_dim),
            nn.ReLU(),
            nn.Conv2d(channels[-1], spec.channels, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """(N, input_dim, 1, 1), the latent as DCGAN's generator takes it, and the label embedding for
        conditional BatchNorm → images."""
        start = self.linear(x.flatten(1)).unflatten(1, (-1, 4, 4))
        return self.output(self.blocks(start, embedding), embedding)


def discriminator_parts(spec: NetworkSpec) -> tuple[nn.Sequential, nn.Linear, int]:
    """Features φ(x) (N, C) from down-blocks and the sum pool; the head ψ, a linear layer; C."""
    channels = widths(spec)[-1:0:-1]  # image_size to 8×8: each block's convolutions run at one of these
    blocks = [DownBlock(spec.channels, channels[0], first=True)]
    blocks += [DownBlock(a, b) for a, b in pairwise(channels)]
    feature_dim = channels[-1]
    return nn.Sequential(*blocks, SumPool()), nn.Linear(feature_dim, 1), feature_dim
