"""The whole service as real processes: redis-server, one worker per queue and uvicorn,
started once per test session on free ports with their own data folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from workers.local.redis_server import start_redis

pytestmark = pytest.mark.integration


class Stack:
    def __init__(self, root: Path, env: dict[str, str] | None = None):
        self.root = root
        self.redis_port = free_port()
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "GANFORGE_DATA_DIR": str(root / "data"),
            "GANFORGE_TORCH_THREADS": "1",
            "GANFORGE_SYNC_WAIT_SECONDS": "30",
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self.processes["redis"] = start_redis(self.redis_port, self.root / "redis")
        self.start_worker("training")
        self.start_worker("evaluation")
        self.start_worker("sampling")
        self.start_webhooks_worker()
        self._spawn("api", "-m", "uvicorn", "app.main:app", "--port", str(self.api_port))
        self.wait_ready()

    def start_worker(self, queue: str, name: str | None = None, env: dict[str, str] | None = None) -> None:
        """A worker of `queue` (named `worker-{queue}` unless `name` says), `env` on top of the stack's."""
        self._spawn(name or f"worker-{queue}", "-m", "workers", "--queues", queue, env=env)

    def start_webhooks_worker(self) -> None:
        self._spawn("worker-webhooks", "-m", "workers.hooks")

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def _spawn(self, name: str, *arguments: str, env: dict[str, str] | None = None) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, *arguments],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        """Until /readyz says a worker serves each queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the stack did not get ready; logs in {self.root}")

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def running_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """A started stack in its own folder, with `env` on top of the defaults, stopped after use (for
    fixtures of any scope)."""
    running = Stack(tmp_path_factory.mktemp(name), env)
    running.start()
    yield running
    running.stop()


def client_of(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(tmp_path_factory, "stack")


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    yield from client_of(stack)


def wait_until(condition, timeout: float, what: str) -> None:
    """Until `condition()` holds; fails after `timeout` seconds naming `what` it waited for."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def wait_for_training(
    api: httpx.Client, job_id: str, statuses: tuple[str, ...], timeout: float = 240
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/training-jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        if job["status"] == "failed":  # and not among the statuses waited for
            raise AssertionError(f"training failed: {job['error']}")
        time.sleep(0.2)
    raise AssertionError(f"training job {job_id} did not reach {statuses}: {job}")


@pytest.fixture(scope="module")
def trained_digits(stack: Stack) -> str:
    """A conditional digits model trained for a few steps; its id."""
    spec = {
        "dataset_id": "digits",
        "conditional": True,
        "steps": 300,
        "latent_dim": 16,
        "base_channels": 8,
        "encoder_steps": 300,
    }
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        job = client.post("/v1/training-jobs", json=spec).json()
        return wait_for_training(client, job["id"], ("completed",))["model_id"]
