"""Evaluation through real workers: FID during training, an evaluation job, its stored row and plot, and
generating from the best checkpoint. The data set is tiny so the Inception network runs on a handful of
images."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.archives import labelled_zip
from tests.integration.conftest import wait_for_training

pytestmark = pytest.mark.integration


def wait_for_job(api: httpx.Client, location: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(location).json()
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"{location} did not finish: {job}")


def test_training_evaluates_and_an_evaluation_job_stores_its_row(api: httpx.Client) -> None:
    assert api.get("/readyz").json()["feature_network"] == "ok"
    upload = api.post(
        "/v1/datasets",
        files={"file": ("pets.zip", labelled_zip())},
        data={"name": "pets", "image_size": "32", "channels": "3", "labels": "folders"},
    )
    assert upload.status_code == 201, upload.text
    spec = {
        "dataset_id": upload.json()["id"],
        "conditional": True,
        "steps": 8,
        "checkpoint_every": 8,
        "eval_every": 4,
        "eval_samples": 12,
        "latent_dim": 16,
        "base_channels": 8,
        "batch_size": 8,
        "encoder_steps": 0,
    }
    job = wait_for_training(api, api.post("/v1/training-jobs", json=spec).json()["id"], ("completed",))
    assert job["checkpoint_steps"] == [4, 8]  # step 4 was written for its evaluation
    model_id = job["model_id"]

    rows = api.get(f"/v1/models/{model_id}/evaluations").json()
    assert [(row["step"], row["samples"], row["source"]) for row in rows["evaluations"]] == [
        (4, 12, "training"),
        (8, 12, "training"),
    ]
    for row in rows["evaluations"]:
        assert row["fid"] > 0 and row["real_images"] == 12
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 and row["kid"] is not None
    best = rows["best"]["step"]

    queued = api.post(f"/v1/models/{model_id}/evaluations", json={"checkpoint": 8, "samples": 20})
    assert queued.status_code == 202
    finished = wait_for_job(api, queued.headers["Location"])
    assert finished["status"] == "finished", finished["error"]
    assert finished["progress"]["phase"] == "samples" and finished["progress"]["done"] == 20
    result = api.get(finished["result_url"]).json()
    assert result["step"] == 8 and result["samples"] == 20 and result["source"] == "request"
    stored = api.get(f"/v1/models/{model_id}/evaluations").json()["evaluations"]
    assert (8, 20) in [(row["step"], row["samples"]) for row in stored]

    plot = api.get(f"/v1/models/{model_id}/quality.png")
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    image = api.post(
        f"/v1/models/{model_id}/generate", json={"seed": 1, "checkpoint": "best", "label": "cats"}
    )
    assert image.status_code == 200 and image.headers["X-Checkpoint"] == str(best)
