"""An encoder E: image → latent, trained as in Age-cGAN (Antipov et al. 2017) on the generator's own
output: draw z (and a label y), render x = G(z, y), regress E(x) onto z. E sees the image alone, so one
encoder serves every label. Its guess is a starting point for optimisation-based inversion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.networks import Generator, NetworkSpec, dcgan_features, init_dcgan_weights
from workers.shared.atomic import atomic_writer


class Encoder(nn.Module):
    """The discriminator's conv stack (stride-2 convolutions, BatchNorm, LeakyReLU 0.2) down to 4×4,
    then a linear layer to the latent."""

    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        self.features, width = dcgan_features(spec, batch_norm=True)
        self.head = nn.Linear(width * 16, spec.latent_dim)
        self.apply(init_dcgan_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, S, S) in [-1, 1] → latents (N, latent_dim)."""
        return self.head(self.features(images).flatten(1))


@contextlib.contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration; each module's previous mode and
    requires_grad flags are restored afterwards. None entries are skipped."""
    present = [module for module in modules if module is not None]
    saved = [(module.training, [p.requires_grad for p in module.parameters()]) for module in present]
    for module in present:
        module.eval().requires_grad_(False)
    try:
        yield
    finally:
        for module, (training, flags) in zip(present, saved, strict=True):
            module.train(training)
            for parameter, flag in zip(module.parameters(), flags, strict=True):
                parameter.requires_grad_(flag)


def train_encoder(
    generator: Generator,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> Encoder:
    """Fit E(G(z, y)) ≈ z by MSE, z ~ N(0, I), y uniform over the classes; `on_step(step, loss)` after
    each step. Same seed, same encoder (on a given device). Returns E in eval mode on G's device."""
    spec = generator.spec
    device = next(generator.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = Encoder(spec).to(device)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr, betas=(0.5, 0.999))
    rng = torch.Generator(device="cpu").manual_seed(seed)
    with frozen(generator):
        for step in range(1, steps + 1):
            latents = torch.randn(batch_size, spec.latent_dim, generator=rng).to(device)
            labels = (
                torch.randint(spec.num_classes, (batch_size,), generator=rng).to(device)
                if spec.conditional
                else None
            )
            with torch.no_grad():
                images = generator(latents, labels)
            loss = F.mse_loss(encoder(images), latents)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, loss.item())
    return encoder.eval()


def save_encoder(path: Path, encoder: Encoder) -> None:
    with atomic_writer(path) as handle:
        torch.save({"spec": encoder.spec.as_dict(), "state": encoder.state_dict()}, handle)


def load_encoder(path: Path, device: torch.device | str = "cpu") -> Encoder:
    """The saved encoder in eval mode on `device`, its parameters frozen."""
    saved = torch.load(path, map_location=device, weights_only=True)
    encoder = Encoder(NetworkSpec(**saved["spec"]))
    encoder.load_state_dict(saved["state"])
    return encoder.to(device).eval().requires_grad_(False)
