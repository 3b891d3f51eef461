"""Requests that wait for their result wait the whole GANFORGE_SYNC_WAIT_SECONDS, then answer 202, even
when that is longer than the Redis client's default read timeout (5 s in redis-py 8). No worker runs
here, so nothing finishes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import LOOPBACK
from workers.shared.settings import get_settings
from workers.shared.storage import ModelManifest

WAIT = 6.0


@pytest.fixture
def waiting_client(service_env, redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from app.main import create_app

    monkeypatch.setenv("GANFORGE_SYNC_WAIT_SECONDS", str(WAIT))
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="http://127.0.0.1", client=LOOPBACK) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("generate", {"seed": 1, "label": "a"}),
        ("arithmetic", {"terms": [{"latent": {"seed": 1}}], "label": "a"}),
    ],
)
def test_a_long_wait_ends_in_202(
    waiting_client: TestClient, conditional_model: ModelManifest, route: str, body: dict
) -> None:
    started = time.monotonic()
    response = waiting_client.post(f"/v1/models/{conditional_model.id}/{route}", json=body)
    assert response.status_code == 202, response.text
    assert time.monotonic() - started >= WAIT - 0.5
    assert waiting_client.get(response.headers["location"]).status_code == 200
