"""The one configuration of ganforge, read from environment variables (and a `.env` file if present).

Shared by the API and the workers, so it must not import torch.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 2**20
MIN_METRICS_TOKEN_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANFORGE_", env_file=".env", extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "GANFORGE_REDIS_URL"),
        description="Redis holding the queues, job state and progress.",
    )
    data_dir: Path = Field(Path("data"), description="Datasets, models and checkpoints live here.")
    storage_url: str = Field(
        "",
        description="`s3://bucket/prefix`: keep datasets and models in that bucket of an S3-compatible store "
        "(AWS S3, MinIO, Ceph RGW; reached through the AWS_* variables) instead of GANFORGE_DATA_DIR, so "
        "that processes on many hosts share them (docs/scale-out.md). Empty: GANFORGE_DATA_DIR.",
    )
    cache_dir: Path | None = Field(
        None,
        description="With GANFORGE_STORAGE_URL: this process's local copies of what it reads from the store. "
        "Default: GANFORGE_DATA_DIR/store-cache.",
    )
    cache_mb: int = Field(
        4096,
        gt=0,
        description="With GANFORGE_STORAGE_URL: the most that checkpoints, data sets and pictures fetched "
        "from the store may take in GANFORGE_CACHE_DIR; the least recently used go first.",
    )
    max_upload_bytes: int = Field(512 * MiB, gt=0, description="Largest dataset upload; larger gets 413.")
    max_image_pixels: int = Field(
        40_000_000, gt=0, description="Images with more pixels are skipped as bombs."
    )
    max_dataset_bytes: int = Field(
        4 * 2**30,
        gt=0,
        description="Largest decoded dataset: images × image_size² × channels bytes; larger gets 413.",
    )
    sync_wait_seconds: float = Field(
        20.0, ge=0, description="How long short work (generate) is waited for before answering 202."
    )
    result_ttl_seconds: int = Field(
        3600, gt=0, le=7 * 24 * 3600, description="How long finished sampling results are kept."
    )
    device: str | None = Field(
        None, description="Worker device: cuda, mps or cpu. Default: the best one found."
    )
    torch_threads: int | None = Field(None, gt=0, description="Worker CPU threads. Default: torch's choice.")
    worker_memory_mb: int | None = Field(
        None,
        gt=0,
        description="Memory a training worker can use (on CUDA: its GPU's); a training spec whose estimate "
        "does not fit gets 422. Default: this machine's physical memory.",
    )
    model_cache_mb: int = Field(
        1024, gt=0, description="Memory the sampling worker may spend on loaded models."
    )
    api_keys: str = Field(
        "",
        description="Comma-separated `role:sha256-of-key` entries (roles admin, user); empty: local only.",
    )
    allowed_origins: str = Field(
        "",
        description="Comma-separated origins (`https://studio.example.com`) of a front end hosted elsewhere "
        "whose state-changing requests are accepted; the service's own origin always is.",
    )
    requests_per_minute: int = Field(6000, ge=0, description="Per API key; 0: unlimited. Past it: 429.")
    max_event_streams: int = Field(
        8,
        ge=0,
        description="Open /events streams per API key (or the local user), per API process; 0: unlimited.",
    )
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
    redis_maxmemory_mb: int = Field(
        1024,
        gt=0,
        description="maxmemory of a Redis that ganforge starts itself; at the limit new work gets 503.",
    )
    max_held_jobs: int = Field(
        100,
        ge=0,
        description="Queued jobs and kept results in Redis per key, together; 0: unlimited. Past it: 429.",
    )
    max_job_recoveries: int = Field(
        3, ge=0, description="Times a training job whose worker died is queued again before it fails."
    )
    metrics_token: str = Field(
        "",
        description="A bearer token that may read /metrics and nothing else, for a Prometheus that should "
        "hold no admin key; empty: /metrics takes an admin key.",
    )

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, token: str) -> str:
        if token and len(token) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"GANFORGE_METRICS_TOKEN needs at least {MIN_METRICS_TOKEN_LENGTH} characters "
                "(make one with `openssl rand -hex 32`)"
            )
        return token

    webhook_secret: SecretStr | None = Field(
        None,
        description="`whsec_…`: signs webhook deliveries (Standard Webhooks); without it, requests that "
        "name a `webhook` get 422.",
    )
    webhook_allow_private: bool = Field(
        False, description="Allow webhooks to loopback, private and link-local addresses (tests, in-cluster)."
    )
    webhook_progress_seconds: float = Field(
        5.0, ge=0, description="Fewest seconds between two `progress` webhooks of one job."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="How long one delivery attempt may take.")
    webhook_max_attempts: int = Field(
        10, ge=1, le=30, description="Attempts per webhook delivery, the first included."
    )
    webhook_retry_base_seconds: float = Field(
        10.0, gt=0, description="Wait before the first retry; each later wait doubles (±25% jitter)."
    )

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, secret: SecretStr | None) -> SecretStr | None:
        """Empty means unset; otherwise Standard Webhooks' form, `whsec_` and base64 key bytes."""
        if secret is None or not secret.get_secret_value():
            return None
        value = secret.get_secret_value()
        try:
            key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            key = b""
        if not value.startswith("whsec_") or len(key) < 16:
            raise ValueError("must be `whsec_` and at least 16 base64-encoded bytes (docs/webhooks.md)")
        return secret

    def worker_memory_bytes(self) -> int | None:
        """`worker_memory_mb`, else this machine's physical memory; None where neither is known."""
        if self.worker_memory_mb is not None:
            return self.worker_memory_mb * MiB
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):  # no sysconf (Windows) or no such name
            return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
