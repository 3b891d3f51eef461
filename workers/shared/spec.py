"""The shape of a generator and discriminator pair, torch-free: the API sizes a training job's memory
from it (workers.shared.footprint) before anything is queued, and models.networks builds the networks
from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from workers.shared.recipes import ARCHITECTURES, CONDITIONINGS, Architecture, Conditioning

IMAGE_SIZES = (32, 64, 128)


@dataclass(frozen=True)
class NetworkSpec:
    image_size: int = 32
    channels: int = 3
    latent_dim: int = 100
    base_channels: int = 64
    num_classes: int = 0  # 0: unconditional
    spectral_norm: bool = False  # in D; resnet's D always has it
    architecture: Architecture = "dcgan"  # checkpoints from before this field are dcgan
    conditioning: Conditioning = "input"  # in G; checkpoints from before this field condition the input

    def __post_init__(self) -> None:
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}")

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def conditional_batch_norm(self) -> bool:
        """Whether G's BatchNorms take their scale and shift from the label (models.conditioning)."""
        return self.conditional and self.conditioning == "batchnorm"

    @property
    def upsamplings(self) -> int:
        """Stride-2 layers between the 4×4 map and the image: 3 at 32 px, 4 at 64, 5 at 128."""
        return self.image_size.bit_length() - 3

    def as_dict(self) -> dict:
        return asdict(self)


def widths(spec: NetworkSpec) -> list[int]:
    """Channels at 4×4, 8×8, …, image_size: halving as the resolution doubles. DCGAN's layers have the
    first `upsamplings` of these (its last layer outputs the image); resnet's stages all of them."""
    widest = spec.base_channels * 2 ** (spec.upsamplings - 1)
    return [max(1, widest >> level) for level in range(spec.upsamplings + 1)]
