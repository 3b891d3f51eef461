"""Hostile requests against the real API: JSON bodies, ids and names that try to be paths, latent
vectors and images to invert. Every one gets a clear 4xx naming the field and the reason, and creates
no job.

Real app, real Redis, no worker.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.hostile import (
    JSON,
    MiB,
    assert_rejected,
    errors,
    png_claiming,
    upload,
    uploads_left,
)
from tests.archives import png, zip_bytes
from workers.shared.contract import RQ_QUEUES
from workers.shared.storage import Storage

# --- JSON bodies ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One tiny trained model for the module (training it, even for a step, costs a second or more)."""
    from tests.api.conftest import make_model

    template = Storage(tmp_path_factory.mktemp("model-template"))
    manifest = make_model(template, [])
    return manifest.id, template.model_dir(manifest.id)


@pytest.fixture
def model_id(storage: Storage, tiny_model_template: tuple[str, Path]) -> str:
    """The template model, copied into this test's data folder."""
    identifier, folder = tiny_model_template
    shutil.copytree(folder, storage.model_dir(identifier))
    return identifier


@pytest.fixture
def generate_url(model_id: str) -> str:
    return f"/v1/models/{model_id}/generate"


def url_for(target: str, request: pytest.FixtureRequest) -> str:
    return "/v1/training-jobs" if target == "train" else request.getfixturevalue("generate_url")


def no_jobs_created(client: TestClient, redis) -> bool:
    """Nothing queued: no training job (the model fixtures' jobs are completed) and no RQ job."""
    queued = sum(redis.llen(f"rq:queue:{name}") for name in RQ_QUEUES)
    jobs = client.get("/v1/training-jobs").json()["training_jobs"]
    return queued == 0 and all(job["status"] == "completed" for job in jobs)


@pytest.mark.parametrize(
    ("target", "body", "field", "words"),
    [
        ("train", {"dataset_id": "digits", "steps": "ten"}, "steps", ["valid integer"]),
        ("train", {"dataset_id": "digits", "lr_g": "fast"}, "lr_g", ["valid number"]),
        ("train", {"dataset_id": "digits", "conditional": "maybe"}, "conditional", ["valid boolean"]),
        ("train", {"dataset_id": "digits", "betas": [0.5]}, "betas", ["Field required"]),
        ("train", {"dataset_id": 7}, "dataset_id", ["valid string"]),
        ("train", {"dataset_id": ["digits"]}, "dataset_id", ["valid string"]),
        ("train", {"dataset_id": "digits", "image_size": "32px"}, "image_size", []),
        ("generate", {"n": [1]}, "n", ["valid integer"]),
        ("generate", {"n": 2.5}, "n", ["integer"]),
        ("generate", {"seed": "seven"}, "seed", ["valid integer"]),
        ("generate", {"seeds": "1,2"}, "seeds", ["valid list"]),
        ("generate", {"truncation": "high"}, "truncation", ["valid number"]),
        ("generate", {"truncation": "1e309"}, "truncation", ["valid number"]),  # text is not a number
        ("generate", {"labels": "a"}, "labels", ["valid list"]),
        ("generate", {"format": {"png": True}}, "format", []),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    client, redis, request, target: str, body: dict, field: str, words: list[str]
) -> None:
    response = client.post(url_for(target, request), json=body)
    assert_rejected(response, 422, field, *words)
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    ("target", "body", "field"),
    [
        ("train", {"dataset_id": "digits", "learning_rate": 0.1}, "learning_rate"),
        ("train", {"dataset_id": "digits", "__class__": "x"}, "__class__"),
        ("generate", {"n": 1, "temperature": 0.7}, "temperature"),
    ],
)
def test_unknown_fields_are_rejected_by_name(client, redis, request, target, body, field) -> None:
    response = client.post(url_for(target, request), json=body)
    assert_rejected(response, 422, field, "Extra inputs are not permitted")
    assert no_jobs_created(client, redis)


def test_huge_seed_array_is_422_and_fast(client, redis, generate_url) -> None:
    started = time.monotonic()
    response = client.post(generate_url, json={"seeds": list(range(100_000))})
    assert time.monotonic() - started < 5
    assert_rejected(response, 422, "seeds", "at most 256")
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    ("target", "raw", "field", "echo"),
    [
        ("train", b'{"dataset_id": "digits", "lr_g": NaN}', "lr_g", "NaN"),
        ("train", b'{"dataset_id": "digits", "lr_d": Infinity}', "lr_d", "Infinity"),
        ("train", b'{"dataset_id": "digits", "ema_decay": -Infinity}', "ema_decay", "-Infinity"),
        ("train", b'{"dataset_id": "digits", "steps": NaN}', "steps", "NaN"),
        ("train", b'{"dataset_id": "digits", "betas": [NaN, 0.9]}', "betas", "NaN"),
        ("train", b'{"dataset_id": "digits", "lr_g": 1e309}', "lr_g", "Infinity"),
        ("generate", b'{"truncation": NaN}', "truncation", "NaN"),
        ("generate", b'{"truncation": 1e309}', "truncation", "Infinity"),
        ("generate", b'{"seed": Infinity}', "seed", "Infinity"),
        ("generate", b'{"seeds": [1, NaN]}', "seeds", "NaN"),
    ],
)
def test_non_finite_numbers_are_422_not_500(client, redis, request, target, raw, field, echo) -> None:
    """Python's json accepts NaN, Infinity and 1e309 (→ inf); JSON cannot carry them back in the error."""
    response = client.post(url_for(target, request), content=raw, headers=JSON)
    assert_rejected(response, 422, field)
    json.loads(response.text)  # strict JSON: no NaN literal in the answer
    assert [item["input"] for item in response.json()["detail"]] == [echo]
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(("depth", "status"), [(500, 422), (5_000, 400), (200_000, 400)])
def test_deeply_nested_json_is_4xx(client, redis, depth: int, status: int) -> None:
    raw = b'{"dataset_id": "digits", "name": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post("/v1/training-jobs", content=raw, headers=JSON)
    if status == 422:  # within the parser's depth: the field is named
        assert_rejected(response, 422, "name", "valid string")
    else:  # deeper than the parser goes
        assert response.status_code == 400 and "parsing the body" in response.json()["detail"]
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    "raw",
    [b'{"dataset_id": "digits", "name": "caf\xe9"}', b'{"dataset_id": "\xc0\xaf"}', b"\x00" * 10],
    ids=["latin1", "overlong-utf8", "nul"],
)
def test_non_utf8_or_garbage_body_is_4xx(client, redis, raw: bytes) -> None:
    response = client.post("/v1/training-jobs", content=raw, headers=JSON)
    assert response.status_code in (400, 422), response.text
    assert response.json()["detail"]
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize("raw", [b'{"dataset_id": "digits",', b"{'dataset_id': 'digits'}", b"digits"])
@pytest.mark.parametrize("target", ["train", "generate"])
def test_a_body_that_is_not_json_is_400_saying_where(client, redis, request, target: str, raw: bytes) -> None:
    response = client.post(url_for(target, request), content=raw, headers=JSON)
    assert response.status_code == 400, response.text
    [error] = response.json()["detail"]
    assert error["loc"][0] == "body" and error["type"] == "json_invalid" and "JSON" in error["msg"]
    assert no_jobs_created(client, redis)


def test_json_body_over_8_mib_is_413(client, redis) -> None:
    big = b'{"dataset_id": "digits", "name": "' + b"x" * (8 * MiB) + b'"}'
    response = client.post("/v1/training-jobs", content=big, headers=JSON)
    assert response.status_code == 413 and str(8 * MiB) in response.json()["detail"]
    chunks = (big[i : i + MiB] for i in range(0, len(big), MiB))  # no Content-Length: counted as it streams
    streamed = client.post("/v1/training-jobs", content=chunks, headers=JSON)
    assert streamed.status_code == 413 and str(8 * MiB) in streamed.json()["detail"]
    assert no_jobs_created(client, redis)


def test_empty_body_is_422(client, redis) -> None:
    response = client.post("/v1/training-jobs", content=b"", headers=JSON)
    assert response.status_code == 422
    assert (
        response.json()["detail"][0]["loc"] == ["body"] and "required" in response.json()["detail"][0]["msg"]
    )
    assert no_jobs_created(client, redis)


def test_text_plain_body_is_422_not_parsed_as_json(client, redis) -> None:
    response = client.post(
        "/v1/training-jobs", content=b'{"dataset_id": "digits"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body"] and "dictionary" in error["msg"]
    assert no_jobs_created(client, redis)


# --- ids and names that try to be paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/datasets/..%2f..%2fetc"),
        ("get", "/v1/datasets/..%2f..%2fetc%2fpasswd/preview.png"),
        ("get", "/v1/models/%2e%2e"),
        ("get", "/v1/models/%2e%2e/checkpoints/1"),
        ("get", "/v1/models/..%5c..%5cetc"),
        ("get", "/v1/jobs/..%2f..%2f..%2fetc%2fpasswd"),
        ("get", "/v1/training-jobs/tj_..%2f..%2fetc"),
        ("get", "/v1/datasets/%2e%2e/preview.png"),
        ("get", "/v1/datasets/digits%00"),
        ("delete", "/v1/datasets/%2e%2e"),
        ("delete", "/v1/models/..%2fdatasets%2fdigits"),
    ],
)
def test_ids_trying_to_be_paths_are_404_or_422(client, unchanged, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code in (404, 422), (path, response.status_code, response.text)
    assert "root:" not in response.text and response.headers["content-type"] == "application/json"
    if response.status_code == 422:
        [(loc, message)] = errors(response)
        assert loc[0] == "path" and loc[1].endswith("_id") and "pattern" in message
    unchanged()
    assert client.get("/v1/datasets/digits").status_code == 200


@pytest.mark.parametrize("dataset_id", ["../../etc/passwd", "digits/../../etc", "/etc", "digits\x00", ".."])
def test_path_as_dataset_id_in_a_training_spec_is_422(client, redis, dataset_id: str) -> None:
    response = client.post("/v1/training-jobs", json={"dataset_id": dataset_id})
    assert_rejected(response, 422, "dataset_id", "pattern")
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    ("name", "filename"),
    [("../../../escaped", "set.zip"), ("", "../../../escaped.zip"), ("..", "/etc/passwd")],
)
def test_upload_name_with_dotdot_is_only_a_display_name(client, storage, tmp_path, name, filename) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    response = upload(client, zip_bytes({"a.png": png(1)}), filename, **({"name": name} if name else {}))
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"ds_[0-9a-f]{12}", body["id"])  # generated, never from the name
    assert body["name"] == (name or filename)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing next to the data folder
    assert sorted(p.name for p in storage.root.iterdir()) == ["datasets", "uploads"]
    assert sorted(p.name for p in (storage.root / "datasets").iterdir()) == sorted(["digits", body["id"]])
    assert uploads_left(storage) == []
    assert not list(Path("/").glob("escaped*")) and not list(tmp_path.parent.glob("escaped*"))


def test_oversized_idempotency_key_is_422(client, redis) -> None:
    response = client.post(
        "/v1/training-jobs", json={"dataset_id": "digits"}, headers={"Idempotency-Key": "k" * 10240}
    )
    assert_rejected(response, 422, "idempotency-key", "at most 200 characters")
    assert no_jobs_created(client, redis)
    odd = {"Idempotency-Key": "*?[]{}\\ :" * 20}  # Redis glob characters are just bytes in a key
    assert client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=odd).status_code == 202


@pytest.mark.parametrize("path", ["checkpoints/{step}", "samples/{step}.png"])
@pytest.mark.parametrize(
    "step",
    [
        pytest.param("-1", id="negative"),
        pytest.param("9" * 240, id="240-digits"),
        pytest.param("9" * 300, id="300-digits"),
    ],
)
def test_absurd_step_in_a_model_file_path_is_4xx(client, model_id: str, path: str, step: str) -> None:
    assert client.get(f"/v1/models/{model_id}/" + path.format(step=1)).status_code == 200
    response = client.get(f"/v1/models/{model_id}/" + path.format(step=step))
    assert response.status_code in (404, 422), response.status_code


# --- the latent space: vectors, names and uploaded images -------------------------------------------


def test_non_finite_latent_vector_is_422(client, model_id: str) -> None:
    raw = b'{"name": "x", "latent": {"vector": [NaN, 1.0, Infinity]}}'
    response = client.post(f"/v1/models/{model_id}/latents", content=raw, headers=JSON)
    assert_rejected(response, 422, "vector")
    json.loads(response.text)
    assert client.get(f"/v1/models/{model_id}/latents").json()["latents"] == []


@pytest.mark.parametrize("name", ["../../manifest", "..", "a/b", "A", ""])
def test_latent_name_trying_to_be_a_path_is_422(client, model_id: str, name: str) -> None:
    response = client.post(f"/v1/models/{model_id}/latents", json={"name": name, "latent": {"seed": 1}})
    assert_rejected(response, 422, "name")
    assert client.get(f"/v1/models/{model_id}/latents/%2e%2e").status_code == 422
    assert client.delete(f"/v1/models/{model_id}/latents/..%2fmanifest").status_code == 404
    assert client.get(f"/v1/models/{model_id}").status_code == 200  # its manifest is still there


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (png_claiming(60000, 60000), "decompression bomb"),
        (b"just text", "not an image"),
        (png(1, size=64)[:100], "corrupt image"),
        (zip_bytes({"a.png": png(1)}), "not an image"),
    ],
    ids=["bomb", "text", "truncated", "zip"],
)
def test_hostile_image_to_invert_is_4xx_naming_image(
    client, redis, model_id: str, data: bytes, reason
) -> None:
    response = client.post(f"/v1/models/{model_id}/invert", files={"image": ("face.png", data)})
    assert_rejected(response, (400, 415, 422), "image", reason)
    assert sum(redis.llen(f"rq:queue:{name}") for name in RQ_QUEUES) == 0
