"""What a worker process holds for its whole life: settings, storage, Redis, the device and the
caches of loaded networks. Jobs reach it through `current_runtime()`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from redis import Redis

from models.checkpoints import load_checkpoint
from models.devices import pick_device
from models.encoder import Encoder, load_encoder
from models.networks import Discriminator, Generator
from models.training import TrainConfig, load_generator
from workers.jobs.model_cache import ModelCache, weight_bytes
from workers.shared.layout import encoder_path
from workers.shared.settings import Settings, get_settings
from workers.shared.storage import Storage, open_storage


@dataclass
class Runtime:
    settings: Settings
    device: torch.device
    storage: Storage = field(init=False)
    redis: Redis = field(init=False)
    generators: ModelCache[Generator] = field(init=False)
    inversion: ModelCache[tuple[Encoder | None, Discriminator]] = field(init=False)

    def __post_init__(self) -> None:
        self.storage = open_storage(self.settings)
        self.redis = Redis.from_url(self.settings.redis_url)
        budget = self.settings.model_cache_mb * 2**20
        self.generators = ModelCache(budget, weight_bytes)
        self.inversion = ModelCache(budget, lambda parts: sum(weight_bytes(part) for part in parts if part))

    def generator(self, model_id: str, step: int) -> Generator:
        """The EMA generator of a checkpoint, loaded once and then served from the cache."""

        def load() -> Generator:
            return load_generator(self._checkpoint(model_id, step), self.device)

        return self.generators.get((model_id, step), load)

    def inversion_parts(self, model_id: str, step: int) -> tuple[Encoder | None, Discriminator]:
        """The model's encoder (None if it has none yet) and the checkpoint's discriminator, whose
        features the inversion compares; cached like the generators."""

        def load() -> tuple[Encoder | None, Discriminator]:
            state = self._checkpoint(model_id, step)
            discriminator = Discriminator(TrainConfig.from_dict(state["config"]).network)
            discriminator.load_state_dict(state["discriminator"])
            discriminator.to(self.device).eval().requires_grad_(False)
            path = encoder_path(self.storage.model_dir(model_id))
            encoder = load_encoder(path, self.device) if self.storage.fetch(path) else None
            return encoder, discriminator

        return self.inversion.get((model_id, step), load)

    def _checkpoint(self, model_id: str, step: int) -> dict:
        """A checkpoint's state on the CPU, fetched from the store once per host. FileNotFoundError,
        naming it, when the store does not have it (deleted, or pruned by its training run)."""
        path = self.storage.checkpoint_file(model_id, step)
        if not self.storage.fetch(path):
            raise FileNotFoundError(f"model {model_id} has no checkpoint at step {step} in the store")
        return load_checkpoint(self.storage.model_dir(model_id), step, device="cpu")


@lru_cache
def current_runtime() -> Runtime:
    settings = get_settings()
    # torch.compile's kernels are kept with the data, so a restarted worker compiles again quickly.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(settings.data_dir.resolve() / "torch-compile-cache"))
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    return Runtime(settings, pick_device(settings.device))
