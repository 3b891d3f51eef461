"""`python -m workers.local.stack` (what scripts/run starts) as a user runs it: Redis started by it with a
password from REDIS_URL and a memory limit, a worker killed with SIGKILL is started again while the API
keeps serving, and SIGTERM stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis import Redis
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Worker

from tests.conftest import free_port
from workers.shared.serialization import DataSerializer

pytestmark = pytest.mark.integration

MiB = 2**20


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except (httpx.TransportError, ConnectionError):
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def worker_pids(redis: Redis, queue: str) -> set[int]:
    workers = Worker.all(connection=redis, serializer=DataSerializer)
    return {worker.pid for worker in workers if worker.queue_names()[0] == queue}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_worker_is_started_again_and_the_api_keeps_serving(tmp_path: Path) -> None:
    redis_url = f"redis://:a%20pass%2Fword@127.0.0.1:{free_port()}/0"
    api = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "GANFORGE_DATA_DIR": str(tmp_path / "data"),
        "GANFORGE_TORCH_THREADS": "1",
        "GANFORGE_REDIS_MAXMEMORY_MB": "256",
    }
    log = tmp_path / "stack.log"
    command = [sys.executable, "-m", "workers.local.stack", "--port", api.rsplit(":", 1)[1]]
    with log.open("wb") as output:
        stack = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    redis = Redis.from_url(redis_url)
    started: set[int] = set()
    try:
        wait_for(lambda: httpx.get(api + "/readyz").status_code == 200, 120, "the stack to get ready")
        assert int(redis.config_get("maxmemory")["maxmemory"]) == 256 * MiB
        with pytest.raises(AuthenticationError):
            Redis.from_url(redis_url.replace(":a%20pass%2Fword@", "")).ping()

        (killed,) = worker_pids(redis, "sampling")
        started |= worker_pids(redis, "training") | {killed, stack.pid}
        os.kill(killed, signal.SIGKILL)
        assert httpx.get(api + "/healthz").status_code == 200  # the API does not go down with it
        replacement = wait_for(lambda: worker_pids(redis, "sampling") - {killed}, 60, "a new sampling worker")
        started |= replacement
        assert stack.poll() is None and httpx.get(api + "/readyz").status_code == 200
        assert "worker sampling exited with status -9; starting it again in 1 s" in log.read_text()
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(timeout=90)
        redis.close()
    assert stack.returncode == 0
    assert not [pid for pid in started if alive(pid)]
    with pytest.raises(httpx.TransportError):
        httpx.get(api + "/healthz")
    with pytest.raises(RedisConnectionError):  # the Redis it started is stopped too
        Redis.from_url(redis_url, socket_connect_timeout=1).ping()
