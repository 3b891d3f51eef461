"""The one configuration of ganforge, read from environment variables (and a `.env` file if present).

Shared by the API and the workers, so it must not import torch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 2**20


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANFORGE_", env_file=".env", extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "GANFORGE_REDIS_URL"),
        description="Redis holding the queues, job state and progress.",
    )
    data_dir: Path = Field(Path("data"), description="Datasets, models and checkpoints live here.")
    max_upload_bytes: int = Field(512 * MiB, gt=0, description="Largest dataset upload; larger gets 413.")
    max_image_pixels: int = Field(
        40_000_000, gt=0, description="Images with more pixels are skipped as bombs."
    )
    sync_wait_seconds: float = Field(
        20.0, ge=0, description="How long short work (generate) is waited for before answering 202."
    )
    result_ttl_seconds: int = Field(3600, gt=0, description="How long finished sampling results are kept.")
    device: str | None = Field(
        None, description="Worker device: cuda, mps or cpu. Default: the best one found."
    )
    torch_threads: int | None = Field(None, gt=0, description="Worker CPU threads. Default: torch's choice.")
    model_cache_mb: int = Field(
        1024, gt=0, description="Memory the sampling worker may spend on loaded models."
    )
    api_keys: str = Field(
        "",
        description="Comma-separated `role:sha256-of-key` entries (roles admin, user); empty: local only.",
    )
    requests_per_minute: int = Field(6000, ge=0, description="Per API key; 0: unlimited. Past it: 429.")
    max_concurrent_jobs: int = Field(
        4, ge=0, description="Queued or running training jobs per key; 0: unlimited."
    )
    batch_max_images: int = Field(
        64, ge=1, description="Most images the sampling worker renders in one pass."
    )
    batch_max_delay_ms: float = Field(
        0.0, ge=0, description="How long the sampling worker waits for more requests to fill a batch."
    )
    redis_timeout_seconds: float = Field(5.0, gt=0, description="Redis connect/read timeout of the API.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
