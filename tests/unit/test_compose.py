"""docker-compose.yml, read as data (no Docker engine here): every service runs a module that exists, each
worker role /readyz waits for has a service, every ganforge service shares Redis and the store, and the
sampling workers can be scaled (`docker compose up --scale worker-sampling=3`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
GANFORGE = {name: service for name, service in SERVICES.items() if service.get("image") == "ganforge:latest"}


@pytest.mark.parametrize("name", sorted(GANFORGE))
def test_each_service_runs_a_module_of_this_repository(name: str) -> None:
    command = GANFORGE[name]["command"]
    module = command[command.index("-m") + 1] if "-m" in command else command[1].split(":")[0]
    assert importlib.util.find_spec(module) is not None, (name, module)


def test_every_role_that_readyz_waits_for_has_a_service() -> None:
    roles = {" ".join(service["command"][2:]) for service in GANFORGE.values()}
    assert {"workers --queues training", "workers --queues evaluation", "workers --queues sampling"} <= roles
    assert "workers.hooks" in roles


@pytest.mark.parametrize("name", sorted(GANFORGE))
def test_every_service_shares_redis_and_the_store(name: str) -> None:
    environment = GANFORGE[name]["environment"]
    assert environment["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")  # a password, always
    assert environment["GANFORGE_STORAGE_URL"].startswith("s3://")
    assert environment["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_sampling_workers_scale() -> None:
    sampling = SERVICES["worker-sampling"]
    assert "container_name" not in sampling and "ports" not in sampling
