"""The studio's files and `GET /v1/whoami`, without a browser (tests/browser drives the page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.routers.studio import STUDIO_DIR
from app.security import hash_key
from workers.shared.settings import get_settings

ADMIN_KEY, USER_KEY = "admin-secret", "user-secret"


def test_root_redirects_to_the_studio(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/studio"


def test_page_and_files_have_their_media_types_and_revalidate(client: TestClient) -> None:
    page = client.get("/studio")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache" and page.headers["etag"]
    assert client.get("/studio", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
    assert client.get("/studio/js/main.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/studio/studio.css").headers["content-type"].startswith("text/css")
    assert client.get("/studio/icon.svg").headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize("path", ["../routers/studio.py", "..%2f..%2fmain.py", "nope.js", "js", "index.py"])
def test_nothing_outside_the_studio_folder_is_served(client: TestClient, path: str) -> None:
    assert client.get(f"/studio/{path}").status_code == 404


def test_every_file_the_page_loads_is_served_by_the_app() -> None:
    """No CDN: every src/href/import in the page's files is a path on this service."""
    for file in STUDIO_DIR.rglob("*"):
        if file.suffix not in (".html", ".js", ".css"):
            continue
        text = file.read_text()
        assert not re.search(r"https?://", text.replace("http://www.w3.org/2000/svg", "")), file
        for target in re.findall(r"""(?:from|import\()\s*["']([^"']+)["']""", text):
            assert (file.parent / target).resolve().is_file(), f"{file}: {target}"


def test_whoami_without_keys_is_the_local_admin(client: TestClient) -> None:
    assert client.get("/v1/whoami").json() == {"role": "admin", "principal": "local"}


@pytest.fixture
def keyed_client(service_env, redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from app.main import create_app

    monkeypatch.setenv("GANFORGE_API_KEYS", f"admin:{hash_key(ADMIN_KEY)},user:{hash_key(USER_KEY)}")
    monkeypatch.setenv("GANFORGE_REQUESTS_PER_MINUTE", "0")
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="http://10.0.0.5") as client:
        yield client


def test_whoami_names_the_keys_role(keyed_client: TestClient) -> None:
    assert keyed_client.get("/v1/whoami").status_code == 401
    user = keyed_client.get("/v1/whoami", headers={"Authorization": f"Bearer {USER_KEY}"}).json()
    assert user["role"] == "user" and user["principal"] == hash_key(USER_KEY)[:12]
    admin = keyed_client.get("/v1/whoami", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert admin["role"] == "admin"
    assert keyed_client.get("/studio").status_code == 200  # the page itself holds no data: no key


def test_studio_stays_small() -> None:
    total = sum(f.stat().st_size for f in Path(STUDIO_DIR).rglob("*") if f.is_file())
    assert total < 200_000
