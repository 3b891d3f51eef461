"""Every bad request gets a clear 4xx naming the field and the reason, and changes nothing.

These run the real app against a real Redis, with no worker: nothing here needs a job to finish.
"""

from __future__ import annotations

import io
import sys
import tarfile

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import LOOPBACK
from tests.archives import labelled_zip, png, zip_bytes
from workers.shared.generate_lane import QUEUE_KEY
from workers.shared.settings import get_settings
from workers.shared.storage import Storage


def error_fields(response) -> list[str]:
    return [item["loc"][-1] for item in response.json()["detail"]]


def upload(client: TestClient, data: bytes, **form) -> object:
    return client.post("/v1/datasets", files={"file": ("set.zip", data)}, data=form)


def dataset_ids(client: TestClient) -> list[str]:
    return [d["id"] for d in client.get("/v1/datasets").json()["datasets"]]


# --- datasets ----------------------------------------------------------------------------------------


def test_upload_with_folders_labels_reports_counts_and_skips(client: TestClient) -> None:
    archive = zip_bytes({"a/1.png": png(1), "a/2.png": png(2), "b/3.png": png(3), "b/broken.png": b"nope"})
    response = upload(client, archive, name="pets", image_size="32", channels="3", labels="folders")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 3 and body["classes"] == ["a", "b"] and body["class_counts"] == {"a": 2, "b": 1}
    assert [s["path"] for s in body["skipped"]] == ["b/broken.png"]
    assert client.get(f"/v1/datasets/{body['id']}").json()["count"] == 3
    preview = client.get(body["preview_url"])
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("form", "field"),
    [({"image_size": "48"}, "image_size"), ({"channels": "2"}, "channels"), ({"labels": "colour"}, "labels")],
)
def test_bad_upload_form_fields_are_422(client: TestClient, form: dict, field: str) -> None:
    before = dataset_ids(client)
    response = upload(client, labelled_zip(), **form)
    assert response.status_code == 422 and field in error_fields(response)
    assert dataset_ids(client) == before


def test_not_an_archive_is_415(client: TestClient) -> None:
    response = upload(client, b"just some text")
    assert response.status_code == 415 and error_fields(response) == ["file"]
    assert "zip or tar" in response.json()["detail"][0]["msg"]


def test_empty_archive_and_no_usable_image_are_400(client: TestClient, storage: Storage) -> None:
    before = dataset_ids(client)
    assert upload(client, zip_bytes({})).status_code == 400
    response = upload(client, zip_bytes({"a.png": b"garbage", "b.txt": b"text"}))
    assert response.status_code == 400 and "no usable image" in response.json()["detail"][0]["msg"]
    assert dataset_ids(client) == before
    assert not [p for p in (storage.root / "datasets").iterdir() if p.name.startswith(".")]
    assert not list(storage.uploads_dir().iterdir())


def test_member_escaping_its_folder_is_rejected(client: TestClient) -> None:
    response = upload(client, zip_bytes({"ok.png": png(1), "../evil.png": png(2)}))
    assert response.status_code == 400 and "../evil.png" in response.json()["detail"][0]["msg"]


def test_tar_symlink_is_rejected(client: TestClient) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = png(1)
        info = tarfile.TarInfo("a.png")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    response = upload(client, buffer.getvalue())
    assert response.status_code == 400 and "link.png" in response.json()["detail"][0]["msg"]


def test_upload_over_the_limit_is_413(service_env, redis, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.main import create_app
    from workers.shared.settings import get_settings

    monkeypatch.setenv("GANFORGE_MAX_UPLOAD_BYTES", "4096")
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="http://127.0.0.1", client=LOOPBACK) as client:
        response = upload(client, labelled_zip())
        assert response.status_code == 413 and "4096" in response.json()["detail"]
        streamed = client.post(  # no Content-Length: cut off while streaming
            "/v1/datasets",
            content=iter([b"--x\r\n", b"a" * 8192, b"\r\n--x--\r\n"]),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert streamed.status_code == 413


def test_delete_dataset_then_404(client: TestClient) -> None:
    dataset_id = upload(client, labelled_zip(), labels="folders").json()["id"]
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert dataset_id not in dataset_ids(client)


def test_builtin_digits_exists(client: TestClient) -> None:
    digits = client.get("/v1/datasets/digits").json()
    assert digits["count"] == 1797 and digits["classes"] == [str(i) for i in range(10)]


@pytest.mark.parametrize("bad_id", ["UPPER", "a.b", "-starts-with-dash", "x" * 65])
def test_ids_not_of_the_pattern_are_422(client: TestClient, bad_id: str) -> None:
    for path in (f"/v1/datasets/{bad_id}", f"/v1/models/{bad_id}", f"/v1/jobs/{bad_id}"):
        response = client.get(path)
        assert response.status_code == 422, path


def test_unknown_ids_are_404(client: TestClient) -> None:
    for path in (
        "/v1/datasets/ds_000000000000",
        "/v1/models/m_000000000000",
        "/v1/jobs/abc",
        "/v1/training-jobs/tj_000000000000",
        "/v1/datasets/ds_000000000000/preview.png",
    ):
        assert client.get(path).status_code == 404, path


# --- training jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset_id": "digits", "steps": 0}, "steps"),
        ({"dataset_id": "digits", "image_size": 48}, "image_size"),
        ({"dataset_id": "digits", "loss": "wasserstein"}, "loss"),
        ({"dataset_id": "digits", "lr_g": -1}, "lr_g"),
        ({"dataset_id": "digits", "label_smoothing": 0.6}, "label_smoothing"),
        ({"dataset_id": "digits", "conditioning": "film"}, "conditioning"),
        ({"dataset_id": "digits", "stepz": 10}, "stepz"),
        ({"dataset_id": "digits", "steps": "many"}, "steps"),
        ({"dataset_id": "../../etc"}, "dataset_id"),
        ({}, "dataset_id"),
        ({"dataset_id": "digits", "devices": 0}, "devices"),
        ({"dataset_id": "digits", "batch_size": 10, "devices": 4}, "devices"),
        ({"dataset_id": "digits", "compile": True, "devices": 2}, "devices"),
    ],
)
def test_bad_training_specs_are_422(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/training-jobs", json=body)
    assert response.status_code == 422 and field in error_fields(response)
    assert client.get("/v1/training-jobs").json()["training_jobs"] == []


def test_training_unknown_dataset_is_404(client: TestClient) -> None:
    response = client.post("/v1/training-jobs", json={"dataset_id": "ds_000000000000"})
    assert response.status_code == 404 and "ds_000000000000" in response.json()["detail"]


def test_conditional_training_needs_labels(client: TestClient) -> None:
    dataset_id = upload(client, labelled_zip(), labels="none").json()["id"]
    response = client.post("/v1/training-jobs", json={"dataset_id": dataset_id, "conditional": True})
    assert response.status_code == 422 and error_fields(response) == ["conditional"]


def test_training_job_is_accepted_and_queued(client: TestClient, redis) -> None:
    response = client.post("/v1/training-jobs", json={"dataset_id": "digits", "steps": 5})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/training-jobs/{job['id']}"
    assert job["status"] == "queued" and job["model_id"] == "m_" + job["id"].removeprefix("tj_")
    assert redis.llen("rq:queue:training") == 1


def test_same_idempotency_key_creates_one_job(client: TestClient, redis) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    first = client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=headers)
    second = client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert len(client.get("/v1/training-jobs").json()["training_jobs"]) == 1
    different = client.post("/v1/training-jobs", json={"dataset_id": "digits", "steps": 3}, headers=headers)
    assert different.status_code == 422


def test_cancel_of_queued_job_and_resume(client: TestClient, redis) -> None:
    job = client.post("/v1/training-jobs", json={"dataset_id": "digits"}).json()
    canceled = client.post(f"/v1/training-jobs/{job['id']}/cancel")
    assert canceled.status_code == 202 and canceled.json()["status"] == "canceled"
    assert canceled.headers["location"] == f"/v1/training-jobs/{job['id']}"
    assert client.post(f"/v1/training-jobs/{job['id']}/cancel").status_code == 409
    resumed = client.post(f"/v1/training-jobs/{job['id']}/resume")
    assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
    assert client.post(f"/v1/training-jobs/{job['id']}/resume").status_code == 409


# --- models and generation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 257}, "n"),
        ({"truncation": 0}, "truncation"),
        ({"seed": -1}, "seed"),
        ({"format": "jpeg"}, "format"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_generate_requests_are_422(
    client: TestClient, unconditional_model, body: dict, field: str
) -> None:
    response = client.post(f"/v1/models/{unconditional_model.id}/generate", json=body)
    assert response.status_code == 422 and field in error_fields(response)


def test_label_for_unconditional_model_is_422(client: TestClient, unconditional_model) -> None:
    response = client.post(f"/v1/models/{unconditional_model.id}/generate", json={"label": "a"})
    assert response.status_code == 422 and error_fields(response) == ["label"]
    assert "unconditional" in response.json()["detail"][0]["msg"]


def test_unknown_label_is_422_listing_the_labels(client: TestClient, conditional_model) -> None:
    response = client.post(
        f"/v1/models/{conditional_model.id}/generate", json={"labels": ["a", "zebra"], "n": 2}
    )
    assert response.status_code == 422 and error_fields(response) == ["labels"]
    assert (
        "'zebra'" in response.json()["detail"][0]["msg"]
        and "['a', 'b']" in response.json()["detail"][0]["msg"]
    )


def test_seed_and_seeds_together_are_422(client: TestClient, conditional_model) -> None:
    response = client.post(f"/v1/models/{conditional_model.id}/generate", json={"seed": 1, "seeds": [1, 2]})
    assert response.status_code == 422 and "not both" in response.text


def test_unknown_checkpoint_is_404_and_no_checkpoint_is_409(
    client: TestClient, storage, conditional_model
) -> None:
    from tests.api.conftest import make_model

    response = client.post(f"/v1/models/{conditional_model.id}/generate", json={"checkpoint": 99})
    assert response.status_code == 404 and "99" in response.json()["detail"]
    fresh = make_model(storage, [], with_checkpoint=False)
    assert client.post(f"/v1/models/{fresh.id}/generate", json={}).status_code == 409
    assert client.get(f"/v1/models/{conditional_model.id}/checkpoints/99").status_code == 404
    assert client.get(f"/v1/models/{conditional_model.id}/samples/99.png").status_code == 404


def test_model_card_and_files(client: TestClient, conditional_model) -> None:
    model = client.get(f"/v1/models/{conditional_model.id}").json()
    assert model["labels"] == ["a", "b"] and model["conditional"] is True and model["checkpoints"] == [1]
    checkpoint = client.get(f"/v1/models/{conditional_model.id}/checkpoints/1")
    assert checkpoint.status_code == 200 and len(checkpoint.content) > 1000
    grid = client.get(f"/v1/models/{conditional_model.id}/samples/1.png")
    assert grid.status_code == 200 and grid.content.startswith(b"\x89PNG")
    curves = client.get(f"/v1/models/{conditional_model.id}/losses.png")
    assert curves.status_code == 200 and curves.content.startswith(b"\x89PNG")


def test_generate_with_prefer_async_is_202_with_location(
    client: TestClient, conditional_model, redis
) -> None:
    response = client.post(
        f"/v1/models/{conditional_model.id}/generate", json={"n": 2}, headers={"Prefer": "respond-async"}
    )
    assert response.status_code == 202
    location = response.headers["location"]
    job = client.get(location).json()
    assert job["status"] == "queued" and job["kind"] == "generate" and job["result_url"] is None
    assert client.get(location + "/result").status_code == 409


def test_generate_answers_202_when_no_worker_answers_within_the_wait(
    service_env, redis, conditional_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker is running: the wait (GANFORGE_SYNC_WAIT_SECONDS) runs out, the request stays queued."""
    from app.main import create_app

    monkeypatch.setenv("GANFORGE_SYNC_WAIT_SECONDS", "0.2")
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="http://127.0.0.1", client=LOOPBACK) as client:
        response = client.post(f"/v1/models/{conditional_model.id}/generate", json={"n": 1})
        assert response.status_code == 202
        job = client.get(response.headers["location"]).json()
    assert job["status"] == "queued" and job["kind"] == "generate"
    assert redis.llen(QUEUE_KEY) == 1


def test_delete_model(client: TestClient, unconditional_model) -> None:
    assert client.delete(f"/v1/models/{unconditional_model.id}").status_code == 204
    assert client.get(f"/v1/models/{unconditional_model.id}").status_code == 404


# --- health, docs ------------------------------------------------------------------------------------


def test_health_and_readiness_without_workers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["redis"] == "ok"
    assert ready.json()["workers"] == {"training": 0, "evaluation": 0, "sampling": 0, "webhooks": 0}


def test_docs_are_served_without_internet(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn" not in page.lower()
    asset = client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000


def test_openapi_declares_png_responses_and_summaries(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    generate = schema["paths"]["/v1/models/{model_id}/generate"]["post"]
    assert "image/png" in generate["responses"]["200"]["content"]
    assert "202" in generate["responses"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"


def test_api_process_never_imports_torch() -> None:
    import subprocess

    probe = "import sys, app.main; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
