"""The whole path with real processes: upload → train → watch → generate, cancel and resume, and a
sampling worker killed and restarted. Models are tiny so each trains in seconds on a CPU."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import pytest
from PIL import Image

from tests.archives import labelled_zip
from tests.integration.conftest import Stack, wait_for_training

pytestmark = pytest.mark.integration

TINY = {"latent_dim": 16, "base_channels": 8, "batch_size": 8, "encoder_steps": 0}


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_upload_train_watch_generate(api: httpx.Client) -> None:
    upload = api.post(
        "/v1/datasets",
        files={"file": ("pets.zip", labelled_zip())},
        data={"name": "pets", "image_size": "32", "channels": "3", "labels": "folders"},
    )
    assert upload.status_code == 201, upload.text
    dataset = upload.json()
    assert dataset["count"] == 12 and dataset["classes"] == ["cats", "dogs"]

    spec = {
        "dataset_id": dataset["id"],
        "conditional": True,
        "steps": 8,
        "checkpoint_every": 4,
        "sample_every": 4,
    }
    started = api.post("/v1/training-jobs", json={**spec, **TINY})
    assert started.status_code == 202
    job = wait_for_training(api, started.json()["id"], ("completed",))
    assert job["step"] == 8 and job["checkpoint_steps"] == [4, 8]
    assert job["loss_d"] is not None and job["images_per_second"] > 0

    model_id = job["model_id"]
    model = api.get(f"/v1/models/{model_id}").json()
    assert model["labels"] == ["cats", "dogs"] and model["samples"] == [4, 8]
    grid = decode(api.get(f"/v1/models/{model_id}/samples/8.png").content)
    assert grid.mode == "RGB" and grid.width > 32 * 8

    one = api.post(f"/v1/models/{model_id}/generate", json={"seed": 7, "label": "dogs"})
    assert one.status_code == 200 and one.headers["content-type"] == "image/png"
    image = decode(one.content)
    assert (image.size, image.mode) == ((32, 32), "RGB")
    assert one.headers["x-seeds"] == "7" and one.headers["x-checkpoint"] == "8"

    many = api.post(f"/v1/models/{model_id}/generate", json={"n": 4, "seed": 7, "label": "dogs"})
    assert decode(many.content).size == (2 + 2 * 34, 2 + 2 * 34)  # a 2×2 grid with 2 px padding

    as_json = api.post(
        f"/v1/models/{model_id}/generate", json={"n": 4, "seed": 7, "label": "dogs", "format": "json"}
    )
    images = as_json.json()["images"]
    assert [item["seed"] for item in images] == [7, 8, 9, 10]
    assert base64.b64decode(images[0]["png_base64"]) == one.content  # same seed, same device: same bytes


def test_prefer_respond_async_then_follow_the_job(api: httpx.Client, trained_digits: str) -> None:
    accepted = api.post(
        f"/v1/models/{trained_digits}/generate",
        json={"n": 3, "seed": 1, "label": 5},
        headers={"Prefer": "respond-async"},
    )
    assert accepted.status_code == 202
    location = accepted.headers["location"]
    deadline = time.monotonic() + 60
    while (job := api.get(location).json())["status"] != "finished":
        assert time.monotonic() < deadline and job["status"] != "failed", job
        time.sleep(0.1)
    result = api.get(job["result_url"])
    assert result.headers["content-type"] == "image/png" and result.headers["x-seeds"] == "1,2,3"
    assert decode(result.content).mode == "L"


def test_events_stream_until_finished(api: httpx.Client) -> None:
    job = api.post(
        "/v1/training-jobs", json={"dataset_id": "digits", "steps": 30, "log_every": 5, **TINY}
    ).json()
    events = []
    with api.stream("GET", f"/v1/training-jobs/{job['id']}/events", timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert events[-1]["status"] == "completed" and events[-1]["step"] == 30
    steps = [event["step"] for event in events]
    assert steps == sorted(steps)


def test_cancel_saves_a_checkpoint_and_resume_continues_from_it(api: httpx.Client) -> None:
    spec = {"dataset_id": "digits", "steps": 400, "checkpoint_every": 1000, "log_every": 1, **TINY}
    job_id = api.post("/v1/training-jobs", json=spec).json()["id"]
    deadline = time.monotonic() + 120
    while api.get(f"/v1/training-jobs/{job_id}").json()["step"] < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.post(f"/v1/training-jobs/{job_id}/cancel").status_code == 202
    canceled = wait_for_training(api, job_id, ("canceled",))
    (stopped_at,) = canceled["checkpoint_steps"]
    assert 5 <= stopped_at < 400 and canceled["step"] >= stopped_at

    assert api.post(f"/v1/training-jobs/{job_id}/resume").status_code == 202
    done = wait_for_training(api, job_id, ("completed",))
    assert done["checkpoint_steps"] == [stopped_at, 400]
    model_id = done["model_id"]
    # Continued, not restarted: every step was logged exactly once across the two runs.
    rows = api.get(f"/v1/models/{model_id}/metrics").json()["metrics"]
    assert [row["step"] for row in rows] == list(range(1, 401))


def test_killed_sampling_worker_loses_no_model(api: httpx.Client, stack: Stack, trained_digits: str) -> None:
    request = {"seed": 3, "label": "3"}
    before = api.post(f"/v1/models/{trained_digits}/generate", json=request)
    assert before.status_code == 200
    stack.kill("worker-sampling")
    stack.start_worker("sampling")
    stack.wait_ready()
    after = api.post(f"/v1/models/{trained_digits}/generate", json=request)
    assert after.status_code == 200 and after.content == before.content


def test_cli_watch_shows_progress_until_completed(api: httpx.Client, stack: Stack) -> None:
    import subprocess
    import sys

    job = api.post("/v1/training-jobs", json={"dataset_id": "digits", "steps": 20, **TINY}).json()
    watch = subprocess.run(
        [sys.executable, "-m", "app.cli", "--url", stack.url, "watch", job["id"]],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert watch.returncode == 0, watch.stderr
    assert f"{job['id']}: completed" in watch.stdout
    assert "20/20" in watch.stderr  # the progress bar is drawn on stderr
