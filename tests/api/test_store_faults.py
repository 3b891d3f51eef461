"""The API over a store that goes away, refuses its credentials, or names a bucket that does not exist:
/readyz says so naming the store, uploads get 503 with Retry-After, a missing bucket stops the start."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import LOOPBACK
from tests.archives import labelled_zip
from tests.s3 import new_bucket, s3_env, s3_server
from workers.shared.object_store import StoreMisconfigured
from workers.shared.settings import get_settings


class Refusing(BaseHTTPRequestHandler):
    """An S3 endpoint that knows no access key: 403 InvalidAccessKeyId to everything."""

    def _refuse(self) -> None:
        body = b"<Error><Code>InvalidAccessKeyId</Code><Message>unknown key</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


def app_client(monkeypatch: pytest.MonkeyPatch, endpoint: str, url: str) -> TestClient:
    for name, value in {**s3_env(endpoint), "GANFORGE_STORAGE_URL": url}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    from app.main import create_app

    return TestClient(create_app(), base_url="http://127.0.0.1", client=LOOPBACK)


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def upload(client: TestClient):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/datasets", files={"file": ("pets.zip", labelled_zip())}, data={"image_size": "32"}
    )


def test_a_store_that_went_away(service_env, redis, monkeypatch: pytest.MonkeyPatch) -> None:
    with s3_server() as endpoint:
        url = f"s3://{new_bucket(endpoint)}/x"
        client = app_client(monkeypatch, endpoint, url)
        client.__enter__()
        assert client.get("/v1/datasets/digits").status_code == 200
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["storage"].startswith(f"the store {url} could not")
        answer = upload(client)
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
        assert f"storage unavailable: the store {url}" in answer.json()["detail"]
        assert client.get("/v1/models").status_code == 503
    finally:
        client.__exit__(None, None, None)


def test_a_store_that_refuses_the_credentials(
    service_env, redis, monkeypatch: pytest.MonkeyPatch, refusing_endpoint: str
) -> None:
    with app_client(monkeypatch, refusing_endpoint, "s3://bucket/x") as client:  # starts, without digits
        ready = client.get("/readyz").json()
        assert ready["storage"].startswith("the store s3://bucket/x refused to reach")
        assert "403" in ready["storage"]
        answer = upload(client)
        assert answer.status_code == 503 and "refused" in answer.json()["detail"]


def test_a_bucket_that_does_not_exist_stops_the_start(
    service_env, redis, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    client = app_client(monkeypatch, s3_endpoint, "s3://no-such-bucket/x")
    with pytest.raises(StoreMisconfigured, match="bucket 'no-such-bucket' does not exist"), client:
        pass
