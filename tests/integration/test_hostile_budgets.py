"""Work budgets against a real stack (real Redis, real workers, real uploads): over-budget requests get
their 4xx with the cap in words, the API's and the sampling worker's peak memory stays bounded by
what a request may cost rather than by what it asks for, and every process is alive and serving
afterwards. Peak memory is /proc's VmHWM, reset before each measured request (Linux)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.archives import png, zip_bytes
from tests.integration.conftest import Stack, running_stack, wait_for_training

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc"),
]

MiB = 2**20
DECODED_LIMIT = 128 * MiB
LABELS = ("été", "日本")  # class names from folder names; they reach the X-Targets header


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """This module's own stack, with a decoded-upload limit that small archives can reach."""
    yield from running_stack(tmp_path_factory, "budgets", {"GANFORGE_MAX_DATASET_BYTES": str(DECODED_LIMIT)})


@pytest.fixture(scope="module")
def model(stack: Stack) -> str:
    """A conditional 128 px model, trained two steps, on a set whose labels are not ASCII."""
    members = {f"faces/{label}/{i}.png": png(i + 10 * n) for n, label in enumerate(LABELS) for i in range(4)}
    with httpx.Client(base_url=stack.url, timeout=120) as client:
        form = {"image_size": "128", "labels": "folders"}
        dataset = client.post("/v1/datasets", files={"file": ("faces.zip", zip_bytes(members))}, data=form)
        assert dataset.status_code == 201, dataset.text
        assert dataset.json()["classes"] == list(LABELS)
        spec = {
            "dataset_id": dataset.json()["id"],
            "conditional": True,
            "latent_dim": 32,
            "base_channels": 32,
            "batch_size": 4,
            "steps": 2,
            "encoder_steps": 0,
        }
        job = client.post("/v1/training-jobs", json=spec)
        assert job.status_code == 202, job.text
        return wait_for_training(client, job.json()["id"], ("completed",))["model_id"]


def memory(process: subprocess.Popen, field: str) -> int:
    """A /proc/<pid>/status field (VmRSS, VmHWM) in bytes."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {process.pid}")


def peak_growth(process: subprocess.Popen, action) -> int:
    """How far above its resident memory the process peaked while `action()` ran. Writing 5 to
    clear_refs restarts VmHWM from the current resident size."""
    Path(f"/proc/{process.pid}/clear_refs").write_text("5")
    before = memory(process, "VmRSS")
    action()
    return memory(process, "VmHWM") - before


def answered(api: httpx.Client, response: httpx.Response, timeout: float = 240) -> httpx.Response:
    """The answer, following a 202 to its job's result."""
    deadline = time.monotonic() + timeout
    while response.status_code == 202:
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.5)
        result = api.get(f"{response.headers['location']}/result")
        if result.status_code != 409:  # 409: not finished yet
            return result
    return response


def assert_serving(stack: Stack, api: httpx.Client, model: str) -> None:
    """Every process alive, the stack ready, and a generate request answered."""
    assert {
        name: process.poll() for name, process in stack.processes.items() if process.poll() is not None
    } == {}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    image = answered(api, api.post(f"/v1/models/{model}/generate", json={"seed": 1, "label": LABELS[0]}))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def tiny_images(count: int) -> bytes:
    """A zip of `count` 1×1 PNGs: a few dozen bytes each, 49,152 bytes each at 128 px in RGB."""
    return zip_bytes({f"{index}.png": png(index, size=1) for index in range(count)})


def test_over_budget_requests_are_refused_in_words(stack: Stack, api: httpx.Client, model: str) -> None:
    keys = [{"seed": seed} for seed in range(16)]
    interpolate = api.post(
        f"/v1/models/{model}/interpolate", json={"latents": keys, "steps": 64, "label": "été"}
    )
    assert interpolate.status_code == 422
    assert "latents × steps is over budget" in interpolate.text and "at most 256" in interpolate.text

    form = {"source_label": "été", "target_labels": ",".join(LABELS * 150), "steps_between": "1"}
    transform = api.post(f"/v1/models/{model}/transform", files={"image": ("x.png", png(1))}, data=form)
    assert transform.status_code == 422 and "target_labels × steps_between is over budget" in transform.text

    overflow = api.post(
        f"/v1/models/{model}/arithmetic",
        json={"terms": [{"weight": 1, "latent": {"vector": [1e300] * 32}}], "label": "été"},
    )
    assert overflow.status_code == 422 and "less than or equal to 1000" in overflow.text

    huge = {"dataset_id": "digits", "architecture": "resnet", "base_channels": 512, "image_size": 128}
    training = api.post("/v1/training-jobs", json={**huge, "batch_size": 4096})
    assert training.status_code == 422
    assert (
        "needs about" in training.text
        and "GiB" in training.text
        and "GANFORGE_WORKER_MEMORY_MB" in training.text
    )
    assert_serving(stack, api, model)


def test_sub_megabyte_zip_that_decodes_past_the_limit_is_413(
    stack: Stack, api: httpx.Client, model: str
) -> None:
    archive = tiny_images(3000)  # 3,000 × 49,152 bytes decoded: 141 MiB
    assert len(archive) < MiB
    before = api.get("/v1/datasets").json()
    upload = {"files": {"file": ("tiny.zip", archive)}, "data": {"image_size": "128", "channels": "3"}}
    responses: list[httpx.Response] = []
    growth = peak_growth(stack.processes["api"], lambda: responses.append(api.post("/v1/datasets", **upload)))
    response = responses[0]
    assert response.status_code == 413, response.text
    assert "3000 images at 128×128 px × 3 channels would decode to 147,456,000 bytes" in response.text
    assert "over the limit of 128 MiB decoded" in response.text
    assert growth < 32 * MiB, growth / MiB
    assert api.get("/v1/datasets").json() == before
    assert_serving(stack, api, model)


def test_an_accepted_upload_is_packed_on_disk_not_in_memory(
    stack: Stack, api: httpx.Client, model: str
) -> None:
    upload = {
        "files": {"file": ("tiny.zip", tiny_images(2000))},
        "data": {"image_size": "128", "channels": "3"},
    }
    responses: list[httpx.Response] = []
    growth = peak_growth(stack.processes["api"], lambda: responses.append(api.post("/v1/datasets", **upload)))
    assert responses[0].status_code == 201, responses[0].text
    assert responses[0].json()["count"] == 2000  # 94 MiB decoded
    assert growth < 48 * MiB, growth / MiB
    assert_serving(stack, api, model)


def test_a_max_size_render_keeps_the_sampling_worker_bounded(
    stack: Stack, api: httpx.Client, model: str
) -> None:
    path = f"/v1/models/{model}/interpolate"
    warm = answered(
        api, api.post(path, json={"latents": [{"seed": 1}, {"seed": 2}], "steps": 1, "label": "été"})
    )
    assert warm.status_code == 200, warm.text  # the generator loaded and the code paths run once
    frames = {"latents": [{"seed": seed} for seed in range(6)], "steps": 50, "label": "été"}  # 256 frames
    responses: list[httpx.Response] = []
    growth = peak_growth(
        stack.processes["worker-sampling"],
        lambda: responses.append(answered(api, api.post(path, json=frames))),
    )
    assert responses[0].status_code == 200, responses[0].text
    assert responses[0].headers["x-frames"] == "256"
    # In one pass G's feature maps for 256 frames at 128 px take about 480 MiB here; in bounded passes
    # (workers.shared.budgets.RENDER_PASS_BYTES) the whole job peaks near 180 MiB.
    assert growth < 320 * MiB, growth / MiB
    assert_serving(stack, api, model)


def test_non_ascii_labels_and_save_as_through_the_stack(stack: Stack, api: httpx.Client, model: str) -> None:
    assert (
        api.post(f"/v1/models/{model}/latents", json={"name": "start", "latent": {"seed": 3}}).status_code
        == 201
    )
    form = {"latent": "start", "source_label": "été", "target_labels": ",".join(LABELS)}
    path = f"/v1/models/{model}/transform"
    transform = answered(api, api.post(path, data=form))
    assert transform.status_code == 200, transform.text
    assert [unquote(label) for label in transform.headers["x-targets"].split(",")] == list(LABELS)

    taken = api.post(path, data={**form, "save_as": "start"})
    assert taken.status_code == 409 and "replace=true" in taken.text
    assert api.get(f"/v1/models/{model}/latents/start").json()["latent"] == {"seed": 3}
    replaced = answered(api, api.post(path, data={**form, "save_as": "start", "replace": "true"}))
    assert replaced.status_code == 200, replaced.text
    assert "vector" in api.get(f"/v1/models/{model}/latents/start").json()["latent"]
    assert_serving(stack, api, model)


def test_long_optimisation_jobs_never_hold_up_short_ones(stack: Stack, api: httpx.Client, model: str) -> None:
    """Three inversions at the step cap queued first, then an interpolation: the sampling worker takes the
    interpolation as soon as the inversion in hand ends, before the inversions still waiting (they are
    on the optimisation queue, which it serves after the sampling queue)."""
    form = {"steps": "500", "label": "été"}
    inversions = [
        api.post(
            f"/v1/models/{model}/invert",
            files={"image": ("face.png", png(seed, size=128))},
            data=form,
            headers={"Prefer": "respond-async"},
        )
        for seed in range(3)
    ]
    assert [response.status_code for response in inversions] == [202] * 3, inversions[0].text
    short = api.post(
        f"/v1/models/{model}/interpolate",
        json={"latents": [{"seed": 1}, {"seed": 2}], "steps": 1, "label": "été"},
        headers={"Prefer": "respond-async"},
    )
    assert answered(api, short).status_code == 200
    last = answered(api, inversions[-1])
    assert last.status_code == 200, last.text

    def started(response: httpx.Response) -> datetime:
        return datetime.fromisoformat(api.get(response.headers["location"]).json()["started_at"])

    assert started(short) < started(inversions[-1])
    assert_serving(stack, api, model)
