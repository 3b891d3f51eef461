"""`python -m workers.local_stack`: the whole service on one machine — Redis (started only when none
answers at REDIS_URL), one worker per queue (training, evaluation, sampling) and the API — stopped
together."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workers.redis_server import local_port, redis_answers, start_redis
from workers.settings import get_settings


def spawn_worker(queue: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workers", "--queues", queue], env=env)


def spawn_api(host: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(port)]
    return subprocess.Popen(command, env=env)


def ensure_redis(url: str, data_dir: Path) -> subprocess.Popen | None:
    """None if a Redis already answers at `url`, else the local redis-server started for it."""
    if redis_answers(url):
        return None
    port = local_port(url)
    if port is None:
        raise SystemExit(f"no Redis answers at {url}, and it is not on this machine to start one")
    print(f"ganforge: no Redis at {url}; starting one (data in {data_dir / 'redis'})", flush=True)
    return start_redis(port, data_dir / "redis")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.local_stack", description=__doc__)
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
    redis = ensure_redis(settings.redis_url, settings.data_dir)
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "GANFORGE_DATA_DIR": str(settings.data_dir.resolve()),
    }
    children = [
        spawn_worker("training", env),
        spawn_worker("evaluation", env),
        spawn_worker("sampling", env),
        spawn_api(args.host, args.port, env),
    ]
    print(
        f"ganforge: API on http://{args.host}:{args.port} (docs at /docs); Ctrl-C stops everything",
        flush=True,
    )

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    for process in [*children, *([redis] if redis else [])]:
        if process.poll() is None:
            process.terminate()
    for process in [*children, *([redis] if redis else [])]:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
