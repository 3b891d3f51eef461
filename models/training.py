"""The GAN training loop: one `Trainer` owns G, D, G-EMA, both optimisers, the data, the augmentation and
the random streams.

Everything random (batch indices, latents) comes from one CPU `torch.Generator`, and the augmentation's
parameters from another (models.augment); both states are saved in each checkpoint, with ADA's p, so a
run resumed from step k draws the same batches as an unbroken run and ends with the same weights (same
device, deterministic kernels). Over several devices (models.distributed) every rank draws the global
batch from these streams and keeps its own rows, so the same holds there. The packed data set lives on
the training device as uint8 and batches are gathered by index: no DataLoader, no per-step host work.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.augment import Augment, policy_operations
from models.devices import autocast_dtype
from models.distributed import Shard
from models.losses import LossName, discriminator_loss, generator_loss
from models.networks import Discriminator, Generator, NetworkSpec
from models.sampling import generate, latents_for_seeds
from workers.shared.recipes import AugmentPolicy


@dataclass(frozen=True)
class TrainConfig:
    network: NetworkSpec = field(default_factory=NetworkSpec)
    loss: LossName = "non_saturating"
    label_smoothing: float = 0.1  # D's target for real images is 1 − this (non_saturating; see losses)
    batch_size: int = 64
    steps: int = 2000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.999
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16
    channels_last: bool | None = None  # None: on CUDA and CPU (oneDNN), where it is faster
    compile: bool = False  # torch.compile G and D: slower first steps, faster after
    augment: AugmentPolicy = "none"  # D's inputs, real and fake (models.augment)
    ada_target: float = 0.6  # "ada": the r_t = E[sign(D(x_real))] that p is steered toward
    ada_speed_images: int = 20_000  # "ada": images over which p can move all the way from 0 to 1
    r1_gamma: float = 0.0  # R1 weight γ: γ/2 · E‖∇D(x_real)‖²; 0: off
    r1_every: int = 16  # lazy R1: on every r1_every-th D update, scaled by r1_every
    d_steps: int = 1  # D updates per G update

    def __post_init__(self) -> None:
        policy_operations(self.augment)  # ValueError naming the allowed policies
        if self.r1_gamma < 0 or self.r1_every < 1 or self.d_steps < 1 or self.ada_speed_images < 1:
            raise ValueError("r1_gamma must be ≥ 0, and r1_every, d_steps and ada_speed_images ≥ 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = dict(values)
        values["network"] = NetworkSpec(**values["network"])
        values["betas"] = tuple(values["betas"])
        return cls(**values)


@dataclass
class StepMetrics:
    step: int
    loss_d: float
    loss_g: float
    d_real: float  # mean D(x): the discriminator's belief that real images are real
    d_fake: float  # mean D(G(z)) before the generator's update
    images_per_second: float
    augment_p: float = 0.0  # the probability each augmentation applies (adaptive under "ada")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        device: torch.device | str = "cpu",
        shard: Shard | None = None,
    ):
        """`shard`: this process's rank in a run over several devices (models.distributed); `device` is
        then the rank's device, and `config.batch_size` the global batch, split evenly over the ranks."""
        network = config.network
        if network.conditional and labels is None:
            raise ValueError("a conditional model needs labels")
        self.shard = shard or Shard(device=torch.device(device))
        if self.shard.distributed and (config.compile or config.batch_size % self.shard.world_size):
            raise ValueError("over several devices, batch_size must be a multiple of them and compile off")
        self.config = config
        self.device = torch.device(device)
        self.dtype = autocast_dtype(config.precision, self.device)
        channels_last = config.channels_last
        self.memory_format = (
            torch.channels_last
            if (channels_last if channels_last is not None else self.device.type in ("cuda", "cpu"))
            else torch.contiguous_format
        )
        self.images = self._place_images(images, network.image_size)
        self.labels = (
            torch.as_tensor(np.asarray(labels), dtype=torch.long, device=self.device)
            if network.conditional
            else None
        )

        torch.manual_seed(config.seed)  # network initialisation
        self.generator = Generator(network).to(self.device, memory_format=self.memory_format)
        self.discriminator = Discriminator(network).to(self.device, memory_format=self.memory_format)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        if config.compile:  # in place: state_dict keys stay those of the plain modules
            # Static shapes: one worker process may train models of several sizes, and the dynamic-shape
            # graph that a second size would trigger fails to compile its backward (torch 2.13, CPU).
            self.generator.compile(dynamic=False)
            # The compiled resnet D fails in backward ("modified by an inplace operation": spectral norm's
            # power iteration on its parallel branches, torch 2.13), so it runs eagerly.
            if network.architecture != "resnet":
                self.discriminator.compile(dynamic=False)
        fused = {"fused": True} if self.device.type in ("cuda", "cpu") else {}  # one kernel per step
        self.optimizer_g = torch.optim.Adam(
            self.generator.parameters(), lr=config.lr_g, betas=config.betas, **fused
        )
        self.optimizer_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.lr_d, betas=config.betas, **fused
        )
        # G and D as trained: in DistributedDataParallel over several devices. G's update calls the plain D:
        # D's weights are frozen there, and DDP would wait for gradients that never come.
        self.train_generator = self.shard.wrap(self.generator)
        self.train_discriminator = self.shard.wrap(self.discriminator)
        self.rng = torch.Generator(device="cpu").manual_seed(config.seed)
        self.augment = Augment(
            config.augment, config.seed, config.ada_target, config.ada_speed_images, self.shard
        )
        self.step = 0

    def _place_images(self, images: np.ndarray, size: int) -> torch.Tensor:
        """Move the uint8 data set to the device once, resized to the model's size if it differs."""
        tensor = torch.from_numpy(np.array(images))  # a private, writable copy (images may be a memory map)
        if tensor.shape[-1] != size:
            resized = F.interpolate(tensor.float(), size=(size, size), mode="bilinear", antialias=True)
            tensor = resized.round().clamp(0, 255).to(torch.uint8)
        return tensor.to(self.device).contiguous(memory_format=self.memory_format)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Real images in [-1, 1], their labels, and latents for the fakes — all from the saved RNG: this
        rank's rows of the global batch."""
        batch, rows = self.config.batch_size, self.shard.rows(self.config.batch_size)
        indices = torch.randint(len(self.images), (batch,), generator=self.rng)[rows].to(self.device)
        latents = torch.randn(batch, self.config.network.latent_dim, generator=self.rng)[rows].to(self.device)
        real = self.images[indices].float().div_(127.5).sub_(1.0)
        labels = self.labels[indices] if self.labels is not None else None
        return real, labels, latents

    def train_step(self) -> StepMetrics:
        """`d_steps` updates of D, each on a batch of its own, then one of G on the last one's fakes."""
        started = time.perf_counter()
        for update in range(self.config.d_steps):  # (1) Update D (see _update_discriminator)
            real, labels, latents = self._next_batch()
            fake, loss_d, real_logits, fake_logits = self._update_discriminator(
                real, labels, latents, self.step * self.config.d_steps + update
            )

        # (2) Update G: make D believe A(G(z)) is real, A the augmentation. D's own weight gradients are
        # not needed here, so backward skips them (a third of D's backward work in this phase).
        self.discriminator.requires_grad_(False)
        with self._autocast():
            loss_g = generator_loss(self.config.loss, self.discriminator(self.augment(fake), labels))
        self.optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizer_g.step()
        self.discriminator.requires_grad_(True)

        # (3) Follow G with its exponential moving average, the weights used for sampling.
        self._update_ema()
        self.step += 1

        values = torch.stack(
            [
                loss_d.detach().float(),
                loss_g.detach().float(),
                real_logits.float().sigmoid().mean(),
                fake_logits.float().sigmoid().mean(),
            ]
        )
        values = self.shard.mean(values).tolist()  # the global batch's: the same on every rank
        return StepMetrics(
            self.step,
            *values,
            images_per_second=self.config.batch_size / (time.perf_counter() - started),
            augment_p=self.augment.p,
        )

    def _update_discriminator(
        self, real: torch.Tensor, labels: torch.Tensor | None, latents: torch.Tensor, update: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(1) Update D: push D(A(x)) up and D(A(G(z))) down, A the augmentation (the identity without
        one). On every r1_every-th update (`update` counts D's updates from 0) add lazy R1 (Mescheder et
        al. 2018; StyleGAN2's lazy form): γ/2 · E‖∇ₓD(A(x))‖² on the reals, times r1_every so that its
        average weight is γ/2. The gradient is taken through A, as ADA's code does. Returns G(z) (still
        attached to G's graph), D's adversarial loss (without R1, so that logged losses stay comparable
        from step to step) and its logits on the reals and fakes."""
        config = self.config
        r1 = config.r1_gamma > 0 and update % config.r1_every == 0
        real.requires_grad_(r1)
        # A compiled module has no double backward: R1 updates call D's plain, uncompiled forward (a
        # compiled run is on one device, where train_discriminator is D itself).
        discriminator = self.discriminator.forward if r1 and config.compile else self.train_discriminator
        with self._autocast():
            fake = self.train_generator(latents, labels)
            real_logits = discriminator(self.augment(real), labels)
            fake_logits = discriminator(self.augment(fake.detach()), labels)
            loss_d = discriminator_loss(config.loss, real_logits, fake_logits, config.label_smoothing)
        objective = loss_d
        if r1:
            # The gradient has the reals' dtype, fp32, also under bf16 autocast.
            (gradient,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
            penalty = gradient.square().sum(dim=(1, 2, 3)).mean()
            objective = loss_d + penalty * (config.r1_gamma / 2 * config.r1_every)
        self.optimizer_d.zero_grad(set_to_none=True)
        objective.backward()
        self.optimizer_d.step()
        self.augment.observe(real_logits)
        return fake, loss_d, real_logits, fake_logits

    @torch.no_grad()
    def _update_ema(self) -> None:
        """G-EMA ← decay·G-EMA + (1 − decay)·G. The decay ramps up as (1 + t)/(10 + t) to `ema_decay`:
        early on a long average would mostly hold the random start and the EMA images would be mush."""
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        ema_parameters = list(self.generator_ema.parameters())
        torch._foreach_lerp_(ema_parameters, list(self.generator.parameters()), 1.0 - decay)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def sample_grid(self) -> tuple[np.ndarray, int]:
        """Images of the EMA generator for fixed latents (seeds 0, 1, …: the same at every step) and
        the grid's column count: 8×8, or for conditional models one class per row, up to 10 rows."""
        network = self.config.network
        columns, rows, labels = 8, 8, None
        if network.conditional:
            rows = min(network.num_classes, 10)
            labels = torch.arange(rows).repeat_interleave(columns)
        latents = latents_for_seeds(range(rows * columns), network.latent_dim)
        return generate(self.generator_ema, latents, labels), columns

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.as_dict(),
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "generator_ema": self.generator_ema.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "rng": self.rng.get_state(),
            "augment": self.augment.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.generator_ema.load_state_dict(state["generator_ema"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.rng.set_state(state["rng"])
        if "augment" in state:  # checkpoints from before augmentation have none (and used none)
            self.augment.load_state_dict(state["augment"])
        self.step = state["step"]


def load_generator(state: dict[str, Any], device: torch.device | str = "cpu") -> Generator:
    """The EMA generator of a checkpoint, in eval mode on `device`, channels-last:
    with bf16 that renders about twice as fast on a CPU for a single image, and no slower elsewhere."""
    config = TrainConfig.from_dict(state["config"])
    generator = Generator(config.network)
    generator.load_state_dict(state["generator_ema"])
    return generator.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
