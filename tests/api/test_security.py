"""Keys and roles, the local-only default, and per-key limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.security import hash_key, match_key, parse_keys
from workers.local_stack import main as local_stack_main
from workers.settings import get_settings

ADMIN_KEY, USER_KEY = "admin-secret", "user-secret"


@pytest.fixture
def keyed_client(service_env, redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from app.main import create_app

    monkeypatch.setenv("GANFORGE_API_KEYS", f"admin:{hash_key(ADMIN_KEY)},user:{hash_key(USER_KEY)}")
    monkeypatch.setenv("GANFORGE_REQUESTS_PER_MINUTE", "0")
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="http://10.0.0.5") as client:  # keys allow any address
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_or_wrong_key_is_401(keyed_client: TestClient) -> None:
    missing = keyed_client.get("/v1/models")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert keyed_client.get("/v1/models", headers=auth("nope")).status_code == 401


def test_roles(keyed_client: TestClient) -> None:
    assert keyed_client.get("/v1/models", headers=auth(USER_KEY)).status_code == 200
    assert keyed_client.get("/v1/jobs/abc", headers=auth(USER_KEY)).status_code == 404  # allowed, unknown
    for method, path in [
        ("get", "/v1/datasets"),
        ("post", "/v1/training-jobs"),
        ("delete", "/v1/models/m_0"),
    ]:
        response = getattr(keyed_client, method)(path, headers=auth(USER_KEY))
        assert response.status_code == 403, path
        assert "admin" in response.json()["detail"]
    assert keyed_client.get("/v1/datasets", headers=auth(ADMIN_KEY)).status_code == 200
    assert keyed_client.get("/v1/models", headers=auth(ADMIN_KEY)).status_code == 200


def test_health_stays_open(keyed_client: TestClient) -> None:
    assert keyed_client.get("/healthz").status_code == 200
    assert keyed_client.get("/readyz").status_code in (200, 503)  # answered, not 401


def test_without_keys_only_loopback_is_served(service_env, redis) -> None:
    from app.main import create_app

    with TestClient(create_app(), base_url="http://192.168.1.20") as client:
        refused = client.get("/v1/models")
        assert refused.status_code == 403 and "GANFORGE_API_KEYS" in refused.json()["detail"]
        assert client.get("/healthz").status_code == 200
    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        assert client.get("/v1/models").status_code == 200


def test_requests_per_minute_limit(keyed_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFORGE_REQUESTS_PER_MINUTE", "3")
    get_settings.cache_clear()
    codes = [keyed_client.get("/v1/models", headers=auth(USER_KEY)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = keyed_client.get("/v1/models", headers=auth(USER_KEY))
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert keyed_client.get("/v1/models", headers=auth(ADMIN_KEY)).status_code == 200  # counted per key


def test_concurrent_training_jobs_limit(keyed_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFORGE_MAX_CONCURRENT_JOBS", "1")
    get_settings.cache_clear()
    first = keyed_client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=auth(ADMIN_KEY))
    assert first.status_code == 202
    second = keyed_client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=auth(ADMIN_KEY))
    assert second.status_code == 429 and second.headers["retry-after"] == "60"
    assert len(keyed_client.get("/v1/training-jobs", headers=auth(ADMIN_KEY)).json()["training_jobs"]) == 1


def test_openapi_shows_the_bearer_scheme(keyed_client: TestClient) -> None:
    schema = keyed_client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/models"]["get"]["security"] == [{"HTTPBearer": []}]


def test_key_parsing_and_matching() -> None:
    entries = parse_keys(f"admin:{hash_key('a')}, user:{hash_key('b')}")
    assert [e.role for e in entries] == ["admin", "user"]
    assert match_key("b", entries).role == "user" and match_key("c", entries) is None
    with pytest.raises(ValueError, match="not 'admin"):
        parse_keys("root:abc")


def test_stack_refuses_a_public_address_without_keys(service_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANFORGE_API_KEYS", raising=False)
    get_settings.cache_clear()
    with pytest.raises(SystemExit, match=r"refusing to listen on 0\.0\.0\.0"):
        local_stack_main(["--host", "0.0.0.0"])
