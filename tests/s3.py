"""A real S3 server for tests: moto's standalone server on a loopback port, spoken to over HTTP by
boto3 exactly as an AWS S3, MinIO or Ceph endpoint would be."""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import socketserver
import threading
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


class Link:
    """A TCP forwarder from a loopback port to `target_port` that can be cut: while cut, connections are
    refused and open ones are closed, as when the network to a store goes down."""

    def __init__(self, target_port: int):
        self.port = free_port()
        self.target_port = target_port
        self._server: socketserver.ThreadingTCPServer | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def connect(self) -> None:
        link = self

        class Forward(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                upstream = socket.create_connection(("127.0.0.1", link.target_port))
                with link._lock:
                    link._open |= {self.request, upstream}
                pump = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
                pump.start()
                _pump(self.request, upstream)
                pump.join()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Forward)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def cut(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._open.clear()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
