"""`python -m workers.local.stack`: the whole service on one machine — Redis (started only when none
answers at REDIS_URL), one worker per queue (training, evaluation, sampling, webhooks) and the API — stopped
together. A process that dies is started again with a backoff (workers.local.supervisor): a crashed worker
is not a reason to stop the API."""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

from workers.local.redis_server import local_port, redis_answers, start_redis
from workers.local.supervisor import Supervised
from workers.shared.contract import QUEUES
from workers.shared.settings import get_settings


def spawn_worker(queue: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workers", "--queues", queue], env=env)


def spawn_webhooks_worker(env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workers.hooks"], env=env)


def spawn_api(host: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(port)]
    return subprocess.Popen(command, env=env)


def local_redis(url: str, data_dir: Path, maxmemory_mb: int) -> Callable[[], subprocess.Popen] | None:
    """None if a Redis already answers at `url`, else how to start a local redis-server for it (with the
    URL's password, if it has one, as `requirepass`)."""
    if redis_answers(url):
        return None
    port = local_port(url)
    if port is None:
        raise SystemExit(f"no Redis answers at {url}, and it is not on this machine to start one")
    print(f"ganforge: no Redis at {url}; starting one (data in {data_dir / 'redis'})", flush=True)
    password = unquote(urlparse(url).password or "") or None
    return functools.partial(
        start_redis, port, data_dir / "redis", maxmemory_mb=maxmemory_mb, password=password
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.local.stack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    settings = get_settings()
    if not settings.api_keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(
            f"refusing to listen on {args.host} with no API keys: set GANFORGE_API_KEYS "
            "(make one with `ganforge new-key --role admin`) or keep the default 127.0.0.1"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    redis = None
    start_local_redis = local_redis(settings.redis_url, settings.data_dir, settings.redis_maxmemory_mb)
    if start_local_redis is not None:
        redis = Supervised("redis", start_local_redis)
        redis.check()  # blocks until it answers
        if redis.process is None:
            raise SystemExit(f"redis-server did not start; see {settings.data_dir / 'redis' / 'redis.log'}")
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "GANFORGE_DATA_DIR": str(settings.data_dir.resolve()),
    }
    children = [
        *(Supervised(f"worker {queue}", functools.partial(spawn_worker, queue, env)) for queue in QUEUES),
        Supervised("worker webhooks", functools.partial(spawn_webhooks_worker, env)),
        Supervised("API", functools.partial(spawn_api, args.host, args.port, env)),
    ]
    supervised = [*([redis] if redis else []), *children]
    print(
        f"ganforge: the studio on http://{args.host}:{args.port}/studio, the API docs at /docs; "
        "Ctrl-C stops everything",
        flush=True,
    )

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:  # a process that exits is started again (workers.local.supervisor)
        for process in supervised:
            process.check()
        time.sleep(0.2)
    for group in (children, [redis] if redis else []):  # Redis last: the others finish their work with it
        for process in group:
            process.stop()
        for process in group:
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
