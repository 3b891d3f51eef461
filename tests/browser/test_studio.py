"""The studio in a real browser against a real stack (Redis, workers, uvicorn): upload, train and watch,
generate, latent arithmetic by clicks, transform; every request stays on 127.0.0.1; a screenshot of
each view goes to $GANFORGE_STUDIO_SCREENSHOTS (else a temporary folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

PER_CLASS = 40 if int(os.environ.get("GANFORGE_STUDIO_STEPS", "160")) <= 160 else 300
STEPS = int(os.environ.get("GANFORGE_STUDIO_STEPS", "160"))  # more for the docs' screenshots
TRAINING = {
    "name": "shapes-studio",
    "steps": str(STEPS),
    "latent_dim": "8" if STEPS <= 160 else "32",
    "base_channels": "8" if STEPS <= 160 else "16",
    "batch_size": "16" if STEPS <= 160 else "32",
    "sample_every": str(STEPS // 4),
    "log_every": "10",
    "checkpoint_every": str(STEPS // 2),
    "encoder_steps": "20" if STEPS <= 160 else "300",
}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("GANFORGE_STUDIO_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "shapes.zip"
    subprocess.run(
        [sys.executable, "scripts/make_demo_archive.py", str(path), "--per-class", str(PER_CLASS)],
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture
def page(browser, studio_stack: Stack):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.requests = []  # every URL the page asked for
    page.errors = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def unlabelled_controls(page) -> list[str]:
    """Inputs and selects with no label: no <label for>, no wrapping label, no aria-label."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter((c) => !c.labels?.length && !c.getAttribute('aria-label')
                           && !c.getAttribute('aria-labelledby'))
            .map((c) => c.outerHTML.slice(0, 120))"""
    )


def shoot(page, shots: Path, name: str) -> None:
    assert unlabelled_controls(page) == [], name
    page.screenshot(path=str(shots / f"studio-{name}.png"), full_page=True)


def test_the_whole_walkthrough_in_the_studio(page, studio_stack: Stack, demo_archive: Path, shots) -> None:
    base = studio_stack.url
    page.goto(base + "/")
    page.wait_for_url(base + "/studio#/datasets")

    # Datasets: upload the demo archive through the form, with progress and the per-class counts
    page.wait_for_selector("article.dataset[data-id=digits]")
    page.set_input_files("#upload-form input[name=file]", str(demo_archive))
    page.select_option("#upload-form select[name=image_size]", "32")
    page.select_option("#upload-form select[name=labels]", "folders")
    page.fill("#upload-form input[name=name]", "shapes")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-form .ok")
    assert page.eval_on_selector("#upload-form progress", "bar => bar.value") == 1
    counts = page.inner_text("#upload-form table.counts")
    assert counts.split() == ["Images", "per", "class", "circles", "squares", str(PER_CLASS), str(PER_CLASS)]
    dataset_id = page.get_attribute("article.dataset:has-text('shapes')", "data-id")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.preview')].every((i) => i.complete && i.naturalWidth)"
    )
    shoot(page, shots, "datasets")

    # Errors appear next to their control, in the API's words
    page.goto(f"{base}/studio#/train?dataset_id={dataset_id}")
    page.wait_for_selector("#train-form input[name=steps]")
    page.fill("#train-form input[name=batch_size]", "1")
    page.click("#train-form button[type=submit]")
    assert "greater than or equal to 2" in page.inner_text("[data-error-for=batch_size]")

    # Train: a tiny run from the form made from the OpenAPI schema
    for name, value in TRAINING.items():
        page.fill(f"#train-form input[name={name}]", value)
    page.check("#train-form input[name=conditional]")
    shoot(page, shots, "train")
    page.click("#train-form button[type=submit]")
    page.wait_for_url("**#/watch?job=*")

    # Watch: progress and the live grid change as it trains, then it completes
    steps_seen, grids_seen = set(), set()
    deadline = time.monotonic() + 900  # a guard against a hang, generous for a loaded machine
    while time.monotonic() < deadline:
        status = page.get_attribute("#run-status", "data-status")
        steps_seen.add(page.get_attribute("#run-step", "data-step"))
        grids_seen.add(page.get_attribute("#live-grid", "data-step"))
        if status == "completed":
            break
        assert status != "failed", page.inner_text("main")
        time.sleep(0.1)
    assert status == "completed"
    page.wait_for_function(f"() => document.querySelector('#live-grid').dataset.step === '{STEPS}'")
    page.wait_for_selector("#checkpoints li a")
    assert len(steps_seen - {None, "0"}) >= 2, steps_seen
    assert len(grids_seen - {None}) >= 2, grids_seen
    assert page.eval_on_selector("#run-progress", "bar => bar.value") == 1
    shoot(page, shots, "watch")
    job_id = page.url.split("job=")[1]
    model_id = httpx.get(f"{base}/v1/training-jobs/{job_id}").json()["model_id"]

    page.goto(f"{base}/studio#/models")
    page.wait_for_selector(f"article.model[data-id={model_id}] img.preview[src^=blob]")
    shoot(page, shots, "models")

    # Generate: a locked seed gives the same image twice; the main button works from the keyboard
    page.goto(f"{base}/studio#/generate?model={model_id}&seed=7&lock=1&n=8&label=circles")
    page.wait_for_selector("#generated[data-serial='1'] img")
    first = page.get_attribute("#generated img", "src")
    assert page.get_attribute("#generated img", "data-seed") == "7"
    page.focus("#generate")
    page.keyboard.press("Enter")
    page.wait_for_selector("#generated[data-serial='2'] img")
    assert page.get_attribute("#generated img", "src") == first
    assert "seed=7" in page.url and "label=circles" in page.url
    page.click("#generated img >> nth=2")
    assert "seed 9" in page.inner_text("#image-detail")
    shoot(page, shots, "generate")

    # Latent lab: A − B + C by clicks, with eight variations; save; walk between named latents
    page.goto(f"{base}/studio#/lab?model={model_id}")
    page.wait_for_selector("#pool button.pick")
    pool = page.locator("#pool button.pick")
    for slot, picks in (("A", (0, 1)), ("B", (2,)), ("C", (3,))):
        page.check(f"input[name=slot][value={slot}]")
        for index in picks:
            pool.nth(index).click()
    assert page.locator("#slot-A img").count() == 2
    page.fill("input[name=name]", "a_mean")  # a slot's mean, saved by name
    page.select_option("select[name=save_what]", "A")
    page.click("#save-latent")
    page.wait_for_selector("#latent-a_mean")
    page.select_option("select[name=save_what]", "result")
    page.click("#compute")
    page.wait_for_function("() => document.querySelectorAll('#arithmetic-result img').length === 9")
    page.fill("input[name=name]", "first")
    page.click("#save-latent")
    page.wait_for_selector("#latent-first")
    page.check("input[name=slot][value=C]")
    pool.nth(5).click()
    page.click("#compute")
    page.wait_for_timeout(200)
    page.wait_for_function("() => !document.querySelector('#compute').disabled")
    page.fill("input[name=name]", "second")
    page.click("#save-latent")
    page.wait_for_selector("#latent-second")
    page.check("#latent-first")
    page.check("#latent-second")
    page.click("#walk")
    page.wait_for_selector("#walk-result img[src^=blob]")
    shoot(page, shots, "lab")

    # Transform: a picture at its label, rebuilt and shown at every label
    picture = demo_archive.parent / "circle.png"
    with zipfile.ZipFile(demo_archive) as archive:
        picture.write_bytes(archive.read("shapes/circles/0000.png"))
    page.goto(f"{base}/studio#/transform?model={model_id}")
    page.set_input_files("#transform-form input[name=image]", str(picture))
    page.select_option("#transform-form select[name=source_label]", "circles")
    page.fill("#transform-form input[name=optimise_steps]", "20")
    page.click("#run-transform")
    page.wait_for_selector("#transform-strip figure >> nth=2")
    assert page.locator("#transform-strip figure").count() == 3  # rebuilt, circles, squares
    page.fill("#label-slider", "1")
    assert page.get_attribute("#transform-frame", "alt") == "at label squares"
    shoot(page, shots, "transform")

    foreign = [url for url in page.requests if not url.startswith((base + "/", "data:", "blob:"))]
    assert foreign == []
    assert page.errors == []


def test_a_user_key_sees_no_dataset_training_or_delete_controls(page, studio_stack: Stack) -> None:
    """The role comes from GET /v1/whoami; here it answers as it would for a `user` key."""
    page.route(
        "**/v1/whoami",
        lambda route: route.fulfill(json={"role": "user", "principal": "0123456789ab"}),
    )
    page.goto(studio_stack.url + "/studio#/datasets")
    page.wait_for_selector("main[data-view=models]")  # admin-only views send a user to the models
    assert page.locator("nav a[href='#/datasets']").is_hidden()
    assert page.locator("nav a[href='#/train']").is_hidden()
    assert page.locator("main button.danger").count() == 0
    assert "user (0123456789ab)" in page.inner_text("#who")


def test_a_401_asks_for_a_key_which_every_request_then_carries(page, studio_stack: Stack) -> None:
    """The stack has no keys; here /v1/whoami answers 401 until the page sends one, as a keyed one would."""
    sent = []

    def whoami(route) -> None:
        key = route.request.headers.get("authorization")
        sent.append(key)
        if key != "Bearer gf_test":
            route.fulfill(status=401, json={"detail": "an API key is required: Authorization: Bearer <key>"})
        else:
            route.fulfill(json={"role": "admin", "principal": "0123456789ab"})

    page.route("**/v1/whoami", whoami)
    authorised = []
    page.on(
        "request", lambda r: authorised.append(r.headers.get("authorization")) if "/v1/" in r.url else None
    )
    page.goto(studio_stack.url + "/studio#/models")
    page.wait_for_selector("#key-form:not([hidden])")
    assert "an API key is required" in page.inner_text("#key-error")
    page.fill("#key-input", "gf_test")
    page.press("#key-input", "Enter")  # the key form works from the keyboard
    page.wait_for_selector("main[data-view=models] h1")
    assert sent == [None, "Bearer gf_test"]
    assert page.evaluate("sessionStorage.getItem('ganforge-key')") == "gf_test"
    assert authorised[-1] == "Bearer gf_test" and len(authorised) >= 3  # whoami twice, then the models
