"""The API contract (docs/api.md, "Building an app"): /openapi.json is valid OpenAPI in which every schema
a request or an answer uses is a named component, every operation keeps the id chosen for it and
documents its errors and headers, picture routes offer a JSON form, and the document is the committed
snapshot, docs/openapi.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from app import __version__
from scripts.export_openapi import COMMAND, SNAPSHOT, diff
from workers.shared.settings import get_settings

OPERATION_IDS = {
    "GET /healthz": "health-live",
    "GET /readyz": "health-ready",
    "GET /v1/whoami": "whoami",
    "POST /v1/datasets": "datasets-upload",
    "GET /v1/datasets": "datasets-list",
    "GET /v1/datasets/{dataset_id}": "datasets-get",
    "DELETE /v1/datasets/{dataset_id}": "datasets-delete",
    "GET /v1/datasets/{dataset_id}/preview.png": "datasets-preview",
    "POST /v1/training-jobs": "training-jobs-start",
    "GET /v1/training-jobs": "training-jobs-list",
    "GET /v1/training-jobs/{training_job_id}": "training-jobs-get",
    "GET /v1/training-jobs/{training_job_id}/events": "training-jobs-events",
    "POST /v1/training-jobs/{training_job_id}/cancel": "training-jobs-cancel",
    "POST /v1/training-jobs/{training_job_id}/resume": "training-jobs-resume",
    "GET /v1/models": "models-list",
    "GET /v1/models/{model_id}": "models-get",
    "DELETE /v1/models/{model_id}": "models-delete",
    "GET /v1/models/{model_id}/samples/{step}.png": "models-sample-grid",
    "GET /v1/models/{model_id}/metrics": "models-metrics",
    "GET /v1/models/{model_id}/losses.png": "models-losses",
    "GET /v1/models/{model_id}/checkpoints/{step}": "models-checkpoint",
    "POST /v1/models/{model_id}/generate": "models-generate",
    "POST /v1/models/{model_id}/latents": "latents-save",
    "GET /v1/models/{model_id}/latents": "latents-list",
    "GET /v1/models/{model_id}/latents/{name}": "latents-get",
    "DELETE /v1/models/{model_id}/latents/{name}": "latents-delete",
    "POST /v1/models/{model_id}/interpolate": "latents-interpolate",
    "POST /v1/models/{model_id}/arithmetic": "latents-arithmetic",
    "POST /v1/models/{model_id}/invert": "latents-invert",
    "POST /v1/models/{model_id}/transform": "latents-transform",
    "POST /v1/models/{model_id}/evaluations": "evaluations-start",
    "GET /v1/models/{model_id}/evaluations": "evaluations-list",
    "GET /v1/models/{model_id}/quality.png": "evaluations-plot",
    "POST /v1/models/{model_id}/exports": "exports-start",
    "GET /v1/models/{model_id}/exports": "exports-list",
    "GET /v1/models/{model_id}/exports/{export_id}": "exports-get",
    "GET /v1/models/{model_id}/exports/{export_id}/file": "exports-file",
    "GET /v1/jobs/{job_id}": "jobs-get",
    "GET /v1/jobs/{job_id}/result": "jobs-result",
    "GET /v1/training-jobs/{training_job_id}/webhook-deliveries": "training-jobs-webhook-deliveries",
    "GET /v1/jobs/{job_id}/webhook-deliveries": "jobs-webhook-deliveries",
    "GET /v1/webhook-deliveries/{delivery_id}": "webhook-deliveries-get",
    "POST /v1/webhook-deliveries/{delivery_id}/redeliver": "webhook-deliveries-redeliver",
}
UNKEYED = {"GET /healthz", "GET /readyz"}
JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/ErrorDetail"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document as the app builds it; test_the_served_document_is_the_committed_snapshot reads it
    over HTTP."""
    from app.main import create_app

    built = create_app().openapi()
    get_settings.cache_clear()  # create_app read the settings; other tests set their own
    return built


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON document."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            yield item
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["info"]["version"] == __version__


def test_every_reference_resolves_to_a_component(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for node in nodes(document):
        assert "$defs" not in node
        if "$ref" in node:
            prefix, _, name = node["$ref"].rpartition("/")
            assert prefix == "#/components/schemas" and name in schemas, node["$ref"]
    assert not [name for name in schemas if name.startswith(("Body_", "HTTPValidation"))]


def test_bodies_are_named_schemas_or_bytes(document: dict[str, Any]) -> None:
    """JSON and multipart bodies are components; pictures, files and event streams are strings."""
    for label, operation in operations(document):
        contents = [operation.get("requestBody", {}).get("content", {})]
        contents += [answer.get("content", {}) for answer in operation["responses"].values()]
        for content in contents:
            for media_type, entry in content.items():
                if media_type in ("application/json", "multipart/form-data"):
                    assert set(entry["schema"]) == {"$ref"}, (label, media_type)
                else:
                    assert entry["schema"]["type"] == "string", (label, media_type)


def test_operation_ids_are_the_chosen_ones(document: dict[str, Any]) -> None:
    assert {label: operation["operationId"] for label, operation in operations(document)} == OPERATION_IDS


def test_every_error_is_documented_with_the_error_body(document: dict[str, Any]) -> None:
    for label, operation in operations(document):
        answers = operation["responses"]
        expected = set() if label in UNKEYED else {"401", "403", "429", "503"}
        if operation.get("parameters") or "requestBody" in operation:
            expected.add("422")
        if "requestBody" in operation:
            expected.add("413")
        if operation.get("requestBody", {}).get("content", {}).keys() & {"multipart/form-data", JSON}:
            expected.add("400")
        if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
            expected.add("404")
        assert expected <= set(answers), (label, expected - set(answers))
        for status, answer in answers.items():
            if status.startswith(("4", "5")) and label != "GET /readyz":
                assert answer["content"]["application/json"]["schema"] == ERROR, (label, status)
            if status in ("429", "503") and label != "GET /readyz":
                assert "Retry-After" in answer["headers"], (label, status)
            if status == "202":
                assert "Location" in answer["headers"], label


def test_pictures_have_a_json_form_and_their_headers(document: dict[str, Any]) -> None:
    pictures = {
        label: operation["responses"]["200"]
        for label, operation in operations(document)
        if any(
            media.startswith("image/") for media in operation["responses"].get("200", {}).get("content", {})
        )
    }
    assert len(pictures) == 10
    for label, answer in pictures.items():
        assert "$ref" in answer["content"]["application/json"]["schema"], label
    generate = pictures["POST /v1/models/{model_id}/generate"]
    assert {"X-Seeds", "X-Checkpoint", "X-Batch-Images"} <= set(generate["headers"])
    checkpoint = document["paths"]["/v1/models/{model_id}/checkpoints/{step}"]["get"]["responses"]["200"]
    assert set(checkpoint["content"]) == {"application/octet-stream"}


def test_the_served_document_is_the_committed_snapshot(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    snapshot = json.loads(SNAPSHOT.read_text())
    if served != snapshot:
        pytest.fail(
            f"{diff(snapshot, served)}\n\nThe API's OpenAPI document differs from docs/openapi.json. If the "
            f"change is deliberate, regenerate the snapshot with\n    {COMMAND}\nand say what changed in "
            "docs/api.md's API changelog.",
            pytrace=False,
        )
