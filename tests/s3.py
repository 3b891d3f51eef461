"""A real S3 server for tests: moto's standalone server on a loopback port, spoken to over HTTP by
boto3 exactly as an AWS S3, MinIO or Ceph endpoint would be."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.conftest import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ganforge-test",
    "AWS_SECRET_ACCESS_KEY": "ganforge-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def s3_server() -> Iterator[str]:
    """A started server; its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables that point boto3 at `endpoint`."""
    return {"AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}


def s3_client(endpoint: str) -> Any:
    """A boto3 client of the server at `endpoint`, for tests to look in or break its buckets."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )


def new_bucket(endpoint: str) -> str:
    """A new empty bucket's name."""
    name = f"ganforge-{secrets.token_hex(4)}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name
