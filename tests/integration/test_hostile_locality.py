"""A hostile client against the real stack (uvicorn, Redis, workers) with no keys configured: requests
that only look local (proxied, DNS-rebound) and other sites' forms are refused with a 403 that says why
and what to configure, and the stack serves on afterwards."""

from __future__ import annotations

import httpx

from tests.archives import labelled_zip
from tests.integration.conftest import Stack

HOW_TO = ("GANFORGE_API_KEYS", "ganforge new-key", "docs/security.md")


def refused(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, (word, detail)
    return detail


def test_proxied_requests_are_refused(api: httpx.Client) -> None:
    """nginx on the same host, a sidecar: the request arrives from 127.0.0.1 but carries proxy headers
    (uvicorn itself trusts X-Forwarded-For from 127.0.0.1 and rewrites the client address)."""
    for headers in (
        {"X-Forwarded-For": "203.0.113.7"},
        {"X-Forwarded-For": "127.0.0.1"},  # a forged "local" client changes nothing
        {"Forwarded": "for=203.0.113.7;proto=https"},
        {"X-Real-IP": "203.0.113.7"},
        {"X-Forwarded-Host": "gan.example.com", "X-Forwarded-Proto": "https"},
    ):
        for path in ("/v1/models", "/docs", "/openapi.json"):
            refused(api.get(path, headers=headers), "proxy headers", *HOW_TO)
        refused(api.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=headers), "proxy")
    assert api.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200


def test_a_foreign_host_is_refused(api: httpx.Client) -> None:
    """DNS rebinding: a page whose name now resolves to 127.0.0.1 sends its own name as Host."""
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example", "10.0.0.5:8000"):
        detail = refused(api.get("/v1/models", headers={"Host": host}), "DNS rebinding", *HOW_TO)
        assert host in detail
    assert api.get("/v1/models", headers={"Host": "localhost"}).status_code == 200


def test_other_sites_forms_cannot_change_anything(api: httpx.Client) -> None:
    """What an HTML form on any page can send without a preflight: urlencoded and multipart POSTs."""
    evil = {"Origin": "http://evil.example"}
    before = api.get("/v1/datasets").json()["datasets"]
    attempts = [
        api.post("/v1/training-jobs", data={"dataset_id": "digits"}, headers=evil),
        api.post("/v1/datasets", files={"file": ("pets.zip", labelled_zip())}, headers=evil),
        api.post(
            "/v1/datasets",
            files={"file": ("pets.zip", labelled_zip())},
            headers={"Referer": "http://evil.example/upload.html"},
        ),
        api.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers={"Origin": "null"}),
    ]
    for response in attempts:
        refused(response, "cross-origin request refused", "GANFORGE_ALLOWED_ORIGINS")
    assert api.get("/v1/datasets").json()["datasets"] == before  # nothing was created
    own = api.post(
        "/v1/datasets", files={"file": ("pets.zip", labelled_zip())}, headers={"Origin": str(api.base_url)}
    )
    assert own.status_code == 201, own.text  # the service's own pages may


def test_the_stack_serves_on(stack: Stack, api: httpx.Client) -> None:
    assert all(process.poll() is None for process in stack.processes.values())
    assert api.get("/readyz").status_code == 200
    models = api.get("/v1/models")
    assert models.status_code == 200 and models.headers["x-content-type-options"] == "nosniff"
    head = api.head("/v1/models")
    assert head.status_code == 200 and head.content == b""
