"""Names of the training recipes' choices, torch-free: the API validates specs against them.

Architectures: `dcgan` (models.networks) and `resnet` (models.resnet). How conditional generators take
the label: `input`, its embedding concatenated to z, or `batchnorm`, every BatchNorm's scale and shift
predicted from it (models.conditioning). Augmentation policies
(models.augment): "none", the DiffAugment operations alone or combined — always written in the order
translation, cutout, color — and "ada", which applies all three, each with an adaptive probability.
"""

from __future__ import annotations

from typing import Literal, get_args

Architecture = Literal["dcgan", "resnet"]
ARCHITECTURES: tuple[Architecture, ...] = get_args(Architecture)

Conditioning = Literal["input", "batchnorm"]
CONDITIONINGS: tuple[Conditioning, ...] = get_args(Conditioning)

AugmentPolicy = Literal[
    "none",
    "translation",
    "cutout",
    "color",
    "translation,cutout",
    "translation,color",
    "cutout,color",
    "translation,cutout,color",
    "ada",
]
AUGMENT_POLICIES: tuple[AugmentPolicy, ...] = get_args(AugmentPolicy)
