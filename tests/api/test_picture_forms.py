"""Every picture route also answers in JSON (`format=json`): the same PNG, base64-encoded, for clients
that cannot take a binary body."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from workers.shared.storage import ModelManifest, Storage


def both_forms(client: TestClient, path: str) -> tuple[bytes, bytes]:
    """The PNG as the route sends it, and the PNG inside its JSON form."""
    picture = client.get(path)
    document = client.get(path, params={"format": "json"})
    assert picture.status_code == document.status_code == 200, (picture.text, document.text)
    assert picture.headers["content-type"] == "image/png"
    assert document.headers["content-type"] == "application/json"
    assert set(document.json()) == {"png_base64"}
    return picture.content, base64.b64decode(document.json()["png_base64"])


def test_dataset_preview_in_both_forms(client: TestClient) -> None:
    picture, decoded = both_forms(client, "/v1/datasets/digits/preview.png")
    assert picture == decoded and picture.startswith(b"\x89PNG")


def test_model_pictures_in_both_forms(
    client: TestClient, unconditional_model: ModelManifest, storage: Storage
) -> None:
    model = unconditional_model.id
    step = storage.sample_steps(model)[-1]
    for path in (f"samples/{step}.png", "losses.png", "quality.png"):
        picture, decoded = both_forms(client, f"/v1/models/{model}/{path}")
        assert picture == decoded and picture.startswith(b"\x89PNG"), path


@pytest.mark.parametrize("form", ["gif", "PNG", ""])
def test_other_forms_are_refused(client: TestClient, form: str) -> None:
    response = client.get("/v1/datasets/digits/preview.png", params={"format": form})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "format"]
