"""GAN losses on discriminator logits.

non_saturating: Goodfellow et al. 2014's practical form — D minimises BCE on real=1 / fake=0, and G
maximises log D(G(z)) instead of minimising log(1 − D(G(z))), which saturates early in training. With
one-sided label smoothing (Salimans et al. 2016) D's target for real images is 1 − label_smoothing: a D
that cannot become certain keeps giving G gradients it can follow (bench/label_smoothing.py measures
whether that helps on the walkthrough's shapes).
hinge: Lim & Ye 2017 / Miyato et al. 2018 — D minimises relu(1 − D(x)) + relu(1 + D(G(z))), G
minimises −D(G(z)).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["non_saturating", "hinge"]


def discriminator_loss(
    name: LossName, real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """`label_smoothing` applies to non_saturating only: the hinge loss has no targets to smooth."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if name == "non_saturating":
        real_target = torch.full_like(real_logits, 1.0 - label_smoothing)
        return F.binary_cross_entropy_with_logits(real_logits, real_target) + F.softplus(fake_logits).mean()
    if name == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    raise ValueError(f"unknown loss {name!r}")


def generator_loss(name: LossName, fake_logits: torch.Tensor) -> torch.Tensor:
    fake_logits = fake_logits.float()
    if name == "non_saturating":
        return F.softplus(-fake_logits).mean()
    if name == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown loss {name!r}")
