"""Class-conditional BatchNorm (de Vries et al. 2017; SNGAN, Miyato & Koyama 2018; BigGAN, Brock et al.
2019): the generator's BatchNorms normalise without their own scale and shift, which are predicted from
the label embedding instead, so the label acts at every resolution rather than only at the input.

The scale and shift are linear in the embedding vector (BigGAN's form), not a table per class: a blend
of two labels' embeddings, which the latent toolkit renders (models.latents), gives the blend of their
scales and shifts, a condition between the two.
"""

from __future__ import annotations

import torch
from torch import nn


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d whose scale is 1 + gain(e) and whose shift is shift(e), e the label embedding."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(embed_dim, channels)
        self.shift = nn.Linear(embed_dim, channels)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        normalised = self.norm(x)
        gain = self.gain(embedding).to(normalised.dtype)[:, :, None, None]
        shift = self.shift(embedding).to(normalised.dtype)[:, :, None, None]
        return normalised * (1 + gain) + shift


class Conditioned(nn.Module):
    """A block whose forward is (x, embedding): models.resnet's up-block."""


class ConditionalSequential(nn.Sequential):
    """A Sequential that hands the label embedding to its layers that take one: ConditionalBatchNorm2d
    and any `Conditioned` block. With plain BatchNorms (input conditioning, unconditional models) it is an
    nn.Sequential with the same layers and state_dict keys."""

    def forward(self, x: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, embedding) if isinstance(layer, CONDITIONED) else layer(x)
        return x


CONDITIONED = (ConditionalBatchNorm2d, ConditionalSequential, Conditioned)


def batch_norm(channels: int, embed_dim: int | None) -> nn.Module:
    """G's BatchNorm: conditional on an embedding of `embed_dim` numbers, or plain when None."""
    return nn.BatchNorm2d(channels) if embed_dim is None else ConditionalBatchNorm2d(channels, embed_dim)
