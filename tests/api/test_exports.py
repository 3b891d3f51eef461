"""The export routes' answers that need no worker: refusals, the queued record and its listing, downloads."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import make_model
from workers.shared.atomic import atomic_write_bytes
from workers.shared.exports import file_path, read_export, update_export


def test_exporting_a_model_without_checkpoint_is_409(client, storage) -> None:
    model = make_model(storage, [], with_checkpoint=False)
    answer = client.post(f"/v1/models/{model.id}/exports", json={"format": "onnx"})
    assert answer.status_code == 409 and "no checkpoint" in answer.json()["detail"]
    assert client.get(f"/v1/models/{model.id}/exports").json() == {"exports": []}


def test_exporting_a_missing_checkpoint_is_404(client, unconditional_model) -> None:
    answer = client.post(
        f"/v1/models/{unconditional_model.id}/exports", json={"format": "onnx", "checkpoint": 999}
    )
    assert answer.status_code == 404 and "999" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "tflite"}, "format"),
        ({}, "format"),
        ({"format": "onnx", "checkpoint": "worst"}, "checkpoint"),
        ({"format": "onnx", "opset": 9}, "opset"),
    ],
)
def test_bad_export_requests_name_the_field(client, unconditional_model, body, field) -> None:
    answer = client.post(f"/v1/models/{unconditional_model.id}/exports", json=body)
    assert answer.status_code == 422
    assert field in json.dumps(answer.json()["detail"])


def test_an_export_of_an_unknown_model_is_404(client) -> None:
    answer = client.post("/v1/models/m_nosuchmodel/exports", json={"format": "onnx"})
    assert answer.status_code == 404 and "m_nosuchmodel" in answer.json()["detail"]


def test_an_export_is_queued_listed_and_its_file_waits(client, storage, conditional_model) -> None:
    model_id = conditional_model.id
    answer = client.post(f"/v1/models/{model_id}/exports", json={"format": "torchscript"})
    assert answer.status_code == 202
    export_id = answer.json()["id"]
    job = client.get(answer.headers["Location"]).json()
    assert job["id"] == export_id and job["kind"] == "export" and job["status"] == "queued"

    (listed,) = client.get(f"/v1/models/{model_id}/exports").json()["exports"]
    assert listed["id"] == export_id and listed["status"] == "queued" and listed["format"] == "torchscript"
    assert listed["step"] == 1 and listed["labels"] == ["a", "b"] and listed["latent_dim"] == 8
    assert listed["file_url"] is None and listed["tolerance"] == 0.001
    assert client.get(f"/v1/models/{model_id}/exports/{export_id}").json() == listed

    waiting = client.get(f"/v1/models/{model_id}/exports/{export_id}/file")
    assert waiting.status_code == 409 and "queued" in waiting.json()["detail"]


def test_a_completed_export_downloads_and_a_failed_one_says_why(client, storage, unconditional_model) -> None:
    model_id = unconditional_model.id
    answer = client.post(f"/v1/models/{model_id}/exports", json={"format": "onnx", "checkpoint": 1})
    record = read_export(storage, model_id, answer.json()["id"])
    atomic_write_bytes(file_path(storage, record), b"onnx bytes")
    done = update_export(storage, record, status="completed", max_difference=1e-7, file_bytes=10)

    listed = client.get(f"/v1/models/{model_id}/exports").json()["exports"]
    assert listed[0]["file_url"] == f"/v1/models/{model_id}/exports/{done.id}/file"
    download = client.get(listed[0]["file_url"])
    assert download.status_code == 200 and download.content == b"onnx bytes"
    assert f'filename="{model_id}-step-000001.onnx"' in download.headers["content-disposition"]

    update_export(storage, done, status="failed", error="ExportMismatch: too far")
    refused = client.get(listed[0]["file_url"])
    assert refused.status_code == 409 and "failed: ExportMismatch: too far" in refused.json()["detail"]


def test_an_unknown_export_is_404(client, unconditional_model) -> None:
    for path in ("e_nosuch", "e_nosuch/file"):
        answer = client.get(f"/v1/models/{unconditional_model.id}/exports/{path}")
        assert answer.status_code == 404 and "e_nosuch" in answer.json()["detail"]
