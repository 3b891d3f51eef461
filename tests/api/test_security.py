"""Keys and roles, the local-only default, and per-key limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.security import hash_key, match_key, parse_keys
from workers.local.stack import main as local_stack_main
from workers.shared.settings import get_settings

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
    export = keyed_client.post("/v1/models/m_0/exports", json={"format": "onnx"}, headers=auth(USER_KEY))
    assert export.status_code == 404  # any key may export: allowed, and the model is unknown
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


def says_how_to_configure(response) -> None:
    detail = response.json()["detail"]
    assert response.status_code == 403, response.text
    assert "GANFORGE_API_KEYS" in detail and "ganforge new-key" in detail and "docs/security.md" in detail


def test_without_keys_only_clients_on_this_machine_are_served(service_env, redis) -> None:
    from app.main import create_app

    # Addressed to 127.0.0.1, but from another machine: the client decides, not the socket.
    with TestClient(create_app(), base_url="http://127.0.0.1", client=("192.168.1.20", 4000)) as client:
        refused = client.get("/v1/models")
        says_how_to_configure(refused)
        assert "192.168.1.20" in refused.json()["detail"]
        for path in ("/docs", "/openapi.json", "/nowhere"):
            assert client.get(path).status_code == 403, path
        assert client.get("/healthz").status_code == 200  # health probes stay open
        assert client.get("/readyz").status_code in (200, 503)
    for address in ("127.0.0.1", "127.8.9.10", "::1"):
        with TestClient(create_app(), base_url="http://127.0.0.1", client=(address, 4000)) as client:
            assert client.get("/v1/models").status_code == 200, address
            assert client.get("/docs").status_code == 200, address


@pytest.mark.parametrize(
    "header",
    [
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "X-Real-IP",
    ],
)
def test_without_keys_proxied_requests_are_refused(client: TestClient, header: str) -> None:
    """nginx, a sidecar or a port-forward in front: every client would arrive from 127.0.0.1."""
    for path in ("/v1/models", "/docs", "/openapi.json"):
        refused = client.get(path, headers={header: "203.0.113.7"})
        says_how_to_configure(refused)
        assert "proxy" in refused.json()["detail"] and header.lower() in refused.json()["detail"]
    assert client.get("/healthz", headers={header: "203.0.113.7"}).status_code == 200
    assert client.get("/v1/models").status_code == 200  # the same client, unproxied


def test_without_keys_a_foreign_host_is_refused(client: TestClient) -> None:
    """DNS rebinding: a page on evil.example re-resolves its name to 127.0.0.1 and sends its own Host."""
    for host in (
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example",
        "192.168.1.20",
        "[2001:db8::1]",
    ):
        refused = client.get("/v1/models", headers={"Host": host})
        says_how_to_configure(refused)
        assert "DNS rebinding" in refused.json()["detail"] and host in refused.json()["detail"], host
    for host in (
        "localhost",
        "LOCALHOST:8000",
        "127.0.0.1",
        "127.0.0.1:8000",
        "127.1.2.3",
        "[::1]",
        "[::1]:80",
        "::1",
    ):
        assert client.get("/v1/models", headers={"Host": host}).status_code == 200, host


def test_keys_decide_behind_a_proxy(keyed_client: TestClient) -> None:
    headers = {**auth(USER_KEY), "X-Forwarded-For": "203.0.113.7", "Host": "gan.example.com"}
    assert keyed_client.get("/v1/models", headers=headers).status_code == 200
    assert keyed_client.get("/v1/models", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 401


def test_cross_origin_state_changes_are_refused(client: TestClient) -> None:
    """An HTML form on another site can POST urlencoded and multipart bodies without a preflight."""
    evil = {"Origin": "http://evil.example"}
    attempts = [
        client.post("/v1/training-jobs", data={"dataset_id": "digits"}, headers=evil),
        client.post("/v1/datasets", files={"file": ("a.zip", b"PK")}, headers=evil),
        client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=evil),
        client.delete("/v1/models/m_0", headers=evil),
        client.post("/v1/training-jobs", json={}, headers={"Referer": "http://evil.example/page.html"}),
        client.post("/v1/training-jobs", json={}, headers={"Origin": "null"}),  # sandboxed frame, file://
        client.post("/v1/training-jobs", json={}, headers={"Origin": "http://127.0.0.1:8080"}),  # other port
        client.post("/v1/training-jobs", json={}, headers={"Origin": "https://127.0.0.1"}),  # other scheme
    ]
    for refused in attempts:
        assert refused.status_code == 403, refused.text
        assert "cross-origin request refused" in refused.json()["detail"]
        assert "GANFORGE_ALLOWED_ORIGINS" in refused.json()["detail"]
    assert "evil.example" in attempts[0].json()["detail"]
    assert client.get("/v1/models", headers=evil).status_code == 200  # reading is not refused


def test_same_origin_and_non_browser_requests_pass(client: TestClient) -> None:
    for headers in (
        {},
        {"Origin": "http://127.0.0.1"},
        {"Origin": "http://127.0.0.1:80"},
        {"Referer": "http://127.0.0.1/docs"},
    ):
        response = client.post("/v1/training-jobs", json={"dataset_id": "nope"}, headers=headers)
        assert response.status_code == 404, (headers, response.text)  # reached the route
    other_port = client.post(
        "/v1/training-jobs",
        json={"dataset_id": "nope"},
        headers={"Host": "localhost:8000", "Origin": "http://localhost:8000"},
    )
    assert other_port.status_code == 404


def test_allowed_origins(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFORGE_ALLOWED_ORIGINS", "https://studio.example.com, http://localhost:5173")
    get_settings.cache_clear()
    for origin in ("https://studio.example.com", "https://STUDIO.example.com:443", "http://localhost:5173"):
        response = client.post("/v1/training-jobs", json={"dataset_id": "nope"}, headers={"Origin": origin})
        assert response.status_code == 404, origin
    refused = client.post("/v1/training-jobs", json={}, headers={"Origin": "http://studio.example.com"})
    assert refused.status_code == 403


def test_cross_origin_is_refused_with_keys_too(keyed_client: TestClient) -> None:
    headers = {**auth(ADMIN_KEY), "Origin": "http://evil.example"}
    refused = keyed_client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=headers)
    assert refused.status_code == 403 and "cross-origin" in refused.json()["detail"]


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
