"""Redis over TLS with a password, through a `rediss://` URL alone: the clients ganforge makes from
REDIS_URL (redis-py's from_url, sync and asyncio) and RQ's queues and jobs work over it unchanged.
Skipped where the system's redis-server was built without TLS or openssl is missing."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job

from tests.conftest import free_port
from workers.local.redis_server import local_port, redis_answers
from workers.shared.contract import INTERPOLATE_JOB
from workers.shared.queueing import enqueue_sampling
from workers.shared.serialization import DataSerializer


@pytest.fixture(scope="module")
def tls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, openssl = shutil.which("redis-server"), shutil.which("openssl")
    if server is None or openssl is None:
        pytest.skip("needs the system's redis-server and openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    certificate = ["-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    names = ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [openssl, "req", *certificate, *names, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    other = ["--tls-auth-clients", "no", "--requirepass", "s3cret", "--save", "", "--dir", str(folder)]
    process = subprocess.Popen(
        [server, "--port", "0", *tls, *other],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"rediss://:s3cret@127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}"
    deadline = time.monotonic() + 60  # generous: a loaded machine starts it slowly
    while not redis_answers(url):
        if process.poll() is not None:
            pytest.skip("this redis-server has no TLS support")
        assert time.monotonic() < deadline, "the TLS redis-server did not start"
        time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_queues_and_jobs_work_over_tls_from_the_url_alone(tls_url: str) -> None:
    redis = Redis.from_url(tls_url)
    job = enqueue_sampling(redis, INTERPOLATE_JOB, {"steps": 3, "image": b"\x00\x01"}, ttl=60)
    fetched = Job.fetch(job.id, connection=redis, serializer=DataSerializer)
    assert fetched.kwargs == {"steps": 3, "image": b"\x00\x01"} and fetched.get_status() == "queued"

    async def ping() -> bool:
        client = AsyncRedis.from_url(tls_url)
        try:
            return await client.ping()
        finally:
            await client.aclose()

    assert asyncio.run(ping())


def test_tls_is_verified_and_never_mistaken_for_a_local_plain_redis(tls_url: str) -> None:
    unverified = tls_url.split("?")[0]  # no CA given: the self-signed certificate is refused
    with pytest.raises(RedisConnectionError):
        Redis.from_url(unverified, socket_connect_timeout=2).ping()
    assert local_port(tls_url) is None  # scripts/run starts no plain redis-server for a rediss:// URL
    assert Path(tls_url.split("ssl_ca_certs=")[1]).exists()
