"""What a worker process holds for its whole life: settings, storage, Redis, the device and the
cache of loaded generators. Jobs reach it through `current_runtime()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch
from redis import Redis

from models.checkpoints import load_checkpoint
from models.networks import Generator
from models.training import load_generator, pick_device
from workers.model_cache import ModelCache, weight_bytes
from workers.settings import Settings, get_settings
from workers.storage import Storage


@dataclass
class Runtime:
    settings: Settings
    device: torch.device
    storage: Storage = field(init=False)
    redis: Redis = field(init=False)
    generators: ModelCache[Generator] = field(init=False)
    rendered: dict[str, dict] = field(default_factory=dict)  # batched results by job id, until returned

    def __post_init__(self) -> None:
        self.storage = Storage(self.settings.data_dir)
        self.redis = Redis.from_url(self.settings.redis_url)
        self.generators = ModelCache(self.settings.model_cache_mb * 2**20, weight_bytes)

    def generator(self, model_id: str, step: int) -> Generator:
        """The EMA generator of a checkpoint, loaded once and then served from the cache."""

        def load() -> Generator:
            state = load_checkpoint(self.storage.model_dir(model_id), step, device="cpu")
            return load_generator(state, self.device)

        return self.generators.get((model_id, step), load)


@lru_cache
def current_runtime() -> Runtime:
    settings = get_settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    return Runtime(settings, pick_device(settings.device))
